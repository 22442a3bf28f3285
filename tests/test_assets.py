"""The repository's own data (``assets/``): what the defaults read, and that the documents point
at files that exist."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from pipeline import assets as pipeline_assets
from pipeline.assets import ASSETS_DIR, CMU_MOCAP_DIR, asf_of, cmu_clip_files, read_cmu_clips
from pipeline.synthetic import _mocap_pool

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ["backflip.amc", "charleston1.amc", "lambada.amc", "131_01.bvh", "131_02.bvh"]


def test_the_clips_are_the_repositorys_own():
    assert ASSETS_DIR == ROOT / "assets" and CMU_MOCAP_DIR == ROOT / "assets" / "cmu_mocap"
    files = cmu_clip_files()
    assert [path.name for path in files] == CLIPS
    assert all(path.is_relative_to(CMU_MOCAP_DIR) for path in files)
    clips = read_cmu_clips(step=40)
    assert list(clips) == [name.split(".")[0] for name in CLIPS]
    assert all(clip.fps == 3.0 and np.isfinite(clip.positions).all() for clip in clips.values())


def test_every_asset_is_credited():
    credits = (ASSETS_DIR / "CREDITS.md").read_text()
    for path in ASSETS_DIR.rglob("*"):
        if path.is_file() and path.name != "CREDITS.md":
            assert path.name in credits, f"{path.relative_to(ROOT)} is not in assets/CREDITS.md"


def test_missing_or_empty_clip_folder_is_an_error_naming_it(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        _mocap_pool(np.zeros((24, 3)), rng, tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"holds no \.amc or \.bvh file"):
        cmu_clip_files(tmp_path)


def test_the_world_fails_without_its_clips(tmp_path, monkeypatch):
    from pipeline.config import SyntheticConfig
    from pipeline.synthetic import generate_synthetic_world

    monkeypatch.setattr(pipeline_assets, "CMU_MOCAP_DIR", tmp_path / "gone")
    config = SyntheticConfig(output_dir=str(tmp_path / "w"), num_train=1, num_val=1)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "gone"))):
        generate_synthetic_world(config)
    assert not (tmp_path / "w" / "info.json").exists()


def test_amc_finds_its_skeleton(tmp_path):
    for name in ("dance.asf", "07.asf", "07_03.amc", "dance12.amc", "solo.amc", "solo.asf"):
        (tmp_path / name).write_text("")
    assert asf_of(tmp_path / "dance12.amc") == tmp_path / "dance.asf"
    assert asf_of(tmp_path / "07_03.amc") == tmp_path / "07.asf"
    assert asf_of(tmp_path / "solo.amc") == tmp_path / "solo.asf"
    with pytest.raises(FileNotFoundError, match=r"lone2\.amc: no skeleton file .*lone\.asf"):
        asf_of(tmp_path / "lone2.amc")


def test_documented_asset_paths_exist():
    documents = [ROOT / "README.md", *sorted((ROOT / "tools").glob("*.py"))]
    seen = set()
    for document in documents:
        for match in re.findall(r"assets/[\w./-]*\w", document.read_text()):
            seen.add(match)
            assert (ROOT / match).exists(), f"{document.relative_to(ROOT)} names {match}"
    assert "assets/demo/spin_example/im1010.jpg" in seen  # the README's demo command


@pytest.mark.skipif(
    not Path(os.environ.get("POSE_SHARED_DATA", ROOT.parent / "shared" / "data")).is_dir(),
    reason="the reference copies (POSE_SHARED_DATA or ../shared/data) are not at hand",
)
def test_unchanged_assets_equal_their_reference_copies():
    reference = Path(os.environ.get("POSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    pairs = [(p, reference / p.relative_to(ASSETS_DIR)) for p in CMU_MOCAP_DIR.rglob("*.*")]
    spin = ASSETS_DIR / "demo" / "spin_example"
    pairs += [(p, reference / "openpose" / "spin_example" / p.name) for p in spin.iterdir()]
    assert len(pairs) == 11
    for ours, theirs in pairs:
        digest = [hashlib.sha256(path.read_bytes()).hexdigest() for path in (ours, theirs)]
        assert digest[0] == digest[1], ours


def test_the_default_lifting_set_is_built_from_the_assets(tmp_path):
    import train_lifting

    files = train_lifting.make_cmu_lifting_set(tmp_path)
    assert files.test_sequences == ("backflip", "charleston1")
    assert (files.num_train, files.num_test) == (4424, 756)  # 4 cameras, 30 fps
