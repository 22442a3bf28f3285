"""The data the repository ships in ``assets/`` (credits in assets/CREDITS.md) and its readers.

``assets/cmu_mocap`` holds CMU motion-capture clips (ASF/AMC pairs and BVH files); the synthetic
world and the default lifting set are made from them. ``assets/demo`` holds the demo examples
(images with OpenPose JSON).
"""

from __future__ import annotations

from pathlib import Path

from pose_data.asf_amc import read_amc, read_asf
from pose_data.bvh import read_bvh
from pose_data.mocap_skeleton import CMU_UNIT_TO_METRES, MocapClip

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
CMU_MOCAP_DIR = ASSETS_DIR / "cmu_mocap"
DEMO_DIR = ASSETS_DIR / "demo"

# The clips whose poses no training image or training lifting row uses: the held-out split of the
# synthetic world and the test split of the default lifting set. A Charleston dance and a back
# flip: motions unlike the training clips' (lambada, the two walks of subject 131).
HELD_OUT_CLIPS = ("charleston1", "backflip")

__all__ = [
    "ASSETS_DIR",
    "CMU_MOCAP_DIR",
    "DEMO_DIR",
    "HELD_OUT_CLIPS",
    "asf_of",
    "cmu_clip_files",
    "read_cmu_clip",
    "read_cmu_clips",
]


def asf_of(amc: Path) -> Path:
    """The skeleton of an AMC motion: ``<name>.asf`` beside it, where ``<name>`` is the AMC's
    stem less its trailing digits (``charleston1.amc`` -> ``charleston.asf``), its subject
    number (CMU's ``01_02.amc`` -> ``01.asf``) or its whole stem, the first that exists."""
    stem = amc.stem
    names = [n for n in dict.fromkeys((stem.rstrip("0123456789"), stem.split("_")[0], stem)) if n]
    for name in names:
        if (amc.parent / f"{name}.asf").is_file():
            return amc.parent / f"{name}.asf"
    tried = ", ".join(f"{name}.asf" for name in names)
    raise FileNotFoundError(f"{amc}: no skeleton file beside it (looked for {tried})")


def cmu_clip_files(folder: Path | str | None = None) -> list[Path]:
    """Every ``.amc`` then every ``.bvh`` file under ``folder`` (default ``CMU_MOCAP_DIR``;
    recursive, each sorted).

    Raises FileNotFoundError naming the folder when it is missing or holds no clip.
    """
    folder = Path(CMU_MOCAP_DIR if folder is None else folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"CMU clip folder {folder} not found (expected .amc/.bvh files)")
    files = sorted(folder.rglob("*.amc")) + sorted(folder.rglob("*.bvh"))
    if not files:
        raise FileNotFoundError(f"CMU clip folder {folder} holds no .amc or .bvh file")
    return files


def read_cmu_clip(path: Path, *, step: int) -> MocapClip:
    """One clip: an AMC with its ASF (``asf_of``) or a BVH in CMU units, every ``step``-th
    frame (the clips are 120 fps; step 4 gives 30 fps)."""
    if path.suffix == ".amc":
        return read_amc(path, read_asf(asf_of(path)), step=step)
    if path.suffix == ".bvh":
        return read_bvh(path, unit_scale=CMU_UNIT_TO_METRES, step=step)
    raise ValueError(f"clip file {path}: expected a .amc or .bvh file")


def read_cmu_clips(folder: Path | str | None = None, *, step: int) -> dict[str, MocapClip]:
    """{file stem: clip} for every file of ``cmu_clip_files(folder)`` (default
    ``CMU_MOCAP_DIR``); two clips with one stem are an error."""
    clips: dict[str, MocapClip] = {}
    for path in cmu_clip_files(folder):
        if path.stem in clips:
            raise ValueError(f"{folder}: two clips named {path.stem!r} (the names must differ)")
        clips[path.stem] = read_cmu_clip(path, step=step)
    return clips
