"""The dataset registry of the pipelines (the data order of training runs is pose_data's
position-keyed samplers, used by pipeline.training_run)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

import pose_geometry as pg

__all__ = [
    "KEYPOINT_LISTS",
    "DatasetEntry",
    "DatasetRegistry",
    "add_data_file_arguments",
    "data_file_entries",
    "load_registry",
]

KEYPOINT_LISTS: dict[str, tuple[int, ...]] = {
    "lsp14": pg.LSP14_IDX_44,
    "h36m17": pg.H36M17_IDX_44,
    "mpi_inf17": pg.MPI_INF17_IDX_44,
    "all44": tuple(range(44)),
}


@dataclass(frozen=True)
class DatasetEntry:
    """One named dataset of the registry (like the original's ``datasets.yaml``).

    Attributes:
        name: registry key, e.g. 'H36M-VAL-P2'.
        type: 'image' (npz), 'multiview' (pickle), 'mocap' (npz), 'lifting' (npz).
        file: the dataset file.
        image_dir: folder the npz's ``imgname`` entries are relative to.
        keypoint_list: evaluation keypoints (indices into the 44 layout) or None.
        keypoint_list_name: the name of that list ('lsp14', ...), '' if none.
        use_hips: the original's USE_HIPS flag (keypoint fitting only; docs/data.md).
        mean_stats: normalisation statistics npz (lifting), or None.
        made_by: the program (with its arguments) that writes ``file``, '' if none is recorded.
    """

    name: str
    type: str
    file: Path
    image_dir: Path
    keypoint_list: tuple[int, ...] | None
    keypoint_list_name: str
    use_hips: bool
    mean_stats: Path | None
    made_by: str = ""

    def require_file(self) -> Path:
        """``file``, after checking that it exists.

        Raises:
            FileNotFoundError: naming the dataset, the file and the program that makes it.
        """
        if not self.file.is_file():
            how = (
                f"make it with {self.made_by}"
                if self.made_by
                else "the registry records no program that makes it"
            )
            raise FileNotFoundError(
                f"dataset '{self.name}': file {self.file} not found; {how} "
                "(or point data.data_root / POSE_DATA_ROOT at the folder that holds it)"
            )
        return self.file


class DatasetRegistry(dict[str, DatasetEntry]):
    """{name: entry} as read from ``path`` (a dict that knows its file)."""

    def __init__(self, entries: dict[str, DatasetEntry], path: Path) -> None:
        super().__init__(entries)
        self.path = path

    def entry(self, name: str, *, key: str, kinds: tuple[str, ...] = ()) -> DatasetEntry:
        """The entry ``name``, given as ``key`` (a config key or a command-line flag).

        Raises:
            ValueError: naming ``key``, the name, the registry file and every known name (of
                the wanted ``kinds``), if it is absent or of another type.
        """
        known = sorted(n for n, e in self.items() if not kinds or e.type in kinds)
        if name not in self:
            raise ValueError(
                f"{key}: dataset {name!r} is not in the registry {self.path}; "
                f"expected one of {', '.join(known)}"
            )
        entry = self[name]
        if kinds and entry.type not in kinds:
            raise ValueError(
                f"{key}: dataset {name!r} has type {entry.type!r} in {self.path}; expected "
                f"type {' or '.join(map(repr, kinds))}, e.g. one of {', '.join(known)}"
            )
        return entry


_ENTRY_KEYS = {"type", "file", "image_dir", "keypoint_list", "use_hips", "mean_stats", "made_by"}
_TEXT_KEYS = ("file", "image_dir", "keypoint_list", "mean_stats", "made_by")
_TYPES = {"image", "multiview", "mocap", "lifting"}


def load_registry(
    path: str | os.PathLike[str], *, data_root: str | os.PathLike[str], synthetic_dir: str = ""
) -> DatasetRegistry:
    """Read the dataset registry YAML.

    Paths may use ``{data_root}`` and ``{synthetic_dir}``; other relative paths resolve against
    ``data_root`` (``POSE_DATA_ROOT`` overrides it when set). The files need not exist yet
    (`DatasetEntry.require_file` checks one when it is used).

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        ValueError: naming the file (and the entry), if it is not YAML, not a non-empty
            mapping of entries, or an entry has an unknown key, type or keypoint list, a
            non-text path, a non-boolean ``use_hips`` or an unknown ``{placeholder}``.
    """
    registry = Path(path)
    if not registry.is_file():
        raise FileNotFoundError(f"dataset registry not found: {registry}")
    try:
        raw = yaml.safe_load(registry.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{registry}: the dataset registry is not valid YAML: {err}") from err
    if not isinstance(raw, dict) or not raw:
        raise ValueError(
            f"{registry}: the dataset registry must be a non-empty mapping of dataset names to "
            f"entries, got {type(raw).__name__}"
        )
    root = Path(os.environ.get("POSE_DATA_ROOT", str(data_root)))

    def resolve(name: str, key: str, value: str) -> Path:
        try:
            text = value.format(data_root=root, synthetic_dir=synthetic_dir)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"{registry}: entry '{name}' {key} {value!r} uses an unknown placeholder "
                f"({err}); expected only {{data_root}} and {{synthetic_dir}}"
            ) from None
        candidate = Path(text)
        return candidate if ("{" in value or candidate.is_absolute()) else root / candidate

    entries = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{registry}: entry '{name}' must be a mapping")
        unknown = sorted(set(spec) - _ENTRY_KEYS)
        if unknown:
            raise ValueError(
                f"{registry}: entry '{name}' has unknown key(s) {unknown}; "
                f"expected {sorted(_ENTRY_KEYS)}"
            )
        kind = spec.get("type", "image")
        if kind not in _TYPES:
            raise ValueError(f"{registry}: entry '{name}' has type {kind!r}; expected {_TYPES}")
        if not spec.get("file"):
            raise ValueError(f"{registry}: entry '{name}' lacks 'file' (the dataset's path)")
        for key in _TEXT_KEYS:
            if key in spec and not isinstance(spec[key], str | None):
                raise ValueError(
                    f"{registry}: entry '{name}' {key} must be text, got {spec[key]!r}"
                )
        if not isinstance(spec.get("use_hips", False), bool):
            raise ValueError(
                f"{registry}: entry '{name}' use_hips must be true or false, "
                f"got {spec['use_hips']!r}"
            )
        list_name = spec.get("keypoint_list", "") or ""
        if list_name and list_name not in KEYPOINT_LISTS:
            raise ValueError(
                f"{registry}: entry '{name}' keypoint_list {list_name!r}; "
                f"expected one of {sorted(KEYPOINT_LISTS)}"
            )
        entries[name] = DatasetEntry(
            name=name,
            type=kind,
            file=resolve(name, "file", spec["file"]),
            image_dir=resolve(name, "image_dir", spec.get("image_dir") or ""),
            keypoint_list=KEYPOINT_LISTS[list_name] if list_name else None,
            keypoint_list_name=list_name,
            use_hips=spec.get("use_hips", False),
            mean_stats=(
                resolve(name, "mean_stats", spec["mean_stats"]) if spec.get("mean_stats") else None
            ),
            made_by=spec.get("made_by") or "",
        )
    return DatasetRegistry(entries, registry)


def add_data_file_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-file`` (image npz files outside the registry, e.g. a converted HumanData file),
    ``--image-dir`` and ``--keypoint-list`` for them."""
    parser.add_argument(
        "--data-file",
        type=Path,
        nargs="*",
        default=[],
        help="image npz files to evaluate besides --dataset (named by their stem)",
    )
    parser.add_argument(
        "--image-dir", type=Path, default=None, help="folder the --data-file imgnames are in"
    )
    parser.add_argument(
        "--keypoint-list",
        choices=sorted(KEYPOINT_LISTS),
        default="lsp14",
        help="evaluation keypoints of the --data-file sets",
    )


def data_file_entries(args: argparse.Namespace) -> dict[str, DatasetEntry]:
    """Registry-like entries of ``--data-file`` (see `add_data_file_arguments`).

    Raises:
        SystemExit: naming the flag if a file is missing or ``--image-dir`` is not given.
    """
    entries: dict[str, DatasetEntry] = {}
    for path in args.data_file:
        if not path.is_file():
            raise SystemExit(f"--data-file {path}: no such file")
        if args.image_dir is None:
            raise SystemExit("--data-file needs --image-dir (the folder its imgnames are in)")
        if path.stem in entries:
            raise SystemExit(f"--data-file: two files are named {path.stem!r}")
        entries[path.stem] = DatasetEntry(
            name=path.stem,
            type="image",
            file=path,
            image_dir=args.image_dir,
            keypoint_list=KEYPOINT_LISTS[args.keypoint_list],
            keypoint_list_name=args.keypoint_list,
            use_hips=False,
            mean_stats=None,
        )
    return entries
