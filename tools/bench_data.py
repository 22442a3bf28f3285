"""Benchmark of pose-data's augmented image loader on the real sample images.

Needs a few real dataset samples that the repository does not ship (their licences do not allow
it): a folder given by ``$POSE_SHARED_DATA`` (default ``../shared/data`` beside the repository)
with ``coco/``, ``mpii/``, ``h36m/`` and, for ``--with-3dhp``, ``mpi_inf_3dhp/``. Builds, in a
temporary folder, one ProHMR npz from them (the COCO, MPII and Human3.6M rows, converted with
convert_coco, convert_mpii_json and spin_npz_to_prohmr; optionally the two MPI-INF-3DHP
2048x2048 frames) repeated to ``--rows`` rows, then measures images per second of
``ImageDataset(train=True)`` (ProHMR's augmentation) through a torch DataLoader (batch 32) with
0 and 2 worker processes, plus the same without augmentation and a
per-image breakdown (JPEG decode vs crop + augmentation) in the main process. Ratios are
against the 0-worker augmented loader measured in the same run; each loader's best of
``--repeats`` passes is kept (the machine may be shared).

Usage:
    python tools/bench_data.py                  # 224 px crops, 320 rows
    python tools/bench_data.py --size 128 --with-3dhp --rows 640
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import pose_data as pd


def shared_data() -> Path:
    """``$POSE_SHARED_DATA`` or ``<repo>/../shared/data``: the licence-restricted samples."""
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("POSE_SHARED_DATA", root.parent / "shared" / "data"))


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    out = dict(arrays)
    out["imgname"] = np.asarray([prefix + str(n) for n in arrays["imgname"]])
    return out


def build_npz(data: Path, out: Path, *, rows: int, with_3dhp: bool) -> tuple[Path, dict[str, int]]:
    """The sample rows of every dataset, concatenated and tiled to ``rows`` rows."""
    parts = {
        "COCO": _prefixed(
            pd.convert_coco(data / "coco/annotations/person_keypoints_val2017_subset.json"),
            "coco/val2017/",
        ),
        "MPII": _prefixed(
            pd.convert_mpii_json(data / "mpii/annot/mpii_subset.json"), "mpii/images/"
        ),
        "H36M": pd.spin_npz_to_prohmr(
            data / "h36m/test_h36m.npz",
            imgname_map=lambda n: f"h36m/images/{n.split('_')[0]}/{n.rsplit('_', 1)[0]}/{n}",
        ),
    }
    if with_3dhp:
        for split in ("train", "test"):
            parts[f"3DHP-{split}"] = _prefixed(
                pd.spin_npz_to_prohmr(
                    data / f"mpi_inf_3dhp/test_3dhp_{split}.npz", joint_layout="mpi_inf_3dhp17"
                ),
                "mpi_inf_3dhp/images/",
            )
    keys = ["imgname", "center", "scale", "body_keypoints_2d", "extra_keypoints_2d"]
    merged = {key: np.concatenate([p[key] for p in parts.values()]) for key in keys}
    for key, trailing in (("body_keypoints_3d", (25, 4)), ("extra_keypoints_3d", (19, 4))):
        merged[key] = np.concatenate(
            [p.get(key, np.zeros((len(p["imgname"]), *trailing))) for p in parts.values()]
        )
    base = len(merged["imgname"])
    order = np.arange(rows) % base
    pd.write_prohmr_npz(out, **{key: value[order] for key, value in merged.items()})
    return out, {name: len(p["imgname"]) for name, p in parts.items()}


def loader_rate(dataset, *, workers: int, batch_size: int) -> float:
    """Images per second over the whole dataset, after a warm-up batch."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, shuffle=False, drop_last=True
    )
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start, first decode
    count, start = 0, time.perf_counter()
    for batch in iterator:
        count += batch["img"].shape[0]
    return count / (time.perf_counter() - start)


def breakdown(dataset: pd.ImageDataset, repeats: int) -> tuple[float, float]:
    """Median ms per image of decoding alone and of a whole augmented item."""
    n = min(len(dataset), repeats)
    decode, whole = [], []
    for i in range(n):
        start = time.perf_counter()
        pd.read_image(dataset.image_path(i))
        decode.append(time.perf_counter() - start)
        start = time.perf_counter()
        dataset[i]
        whole.append(time.perf_counter() - start)
    return 1000 * statistics.median(decode), 1000 * statistics.median(whole)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="crop side in pixels")
    parser.add_argument("--rows", type=int, default=320, help="rows after repetition")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--with-3dhp", action="store_true", help="add the 2048x2048 3DHP frames")
    parser.add_argument("--repeats", type=int, default=3, help="passes per loader (best kept)")
    args = parser.parse_args()
    data = shared_data()
    if not data.is_dir():
        raise SystemExit(
            f"bench_data.py: real sample folder {data} not found. This benchmark needs COCO, "
            "MPII and Human3.6M samples, which the repository does not ship (licence-restricted); "
            "set POSE_SHARED_DATA to a folder holding them (coco/, mpii/, h36m/; the layout is "
            "in this program's docstring)"
        )
    torch.set_num_threads(1)
    print(
        f"pose-data loader benchmark | {platform.processor() or platform.machine()} | "
        f"{os.cpu_count()} CPUs | torch {torch.__version__} | crop {args.size} px | "
        f"batch {args.batch_size}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        npz, counts = build_npz(
            data, Path(tmp) / "bench.npz", rows=args.rows, with_3dhp=args.with_3dhp
        )
        print(f"{args.rows} rows from the real samples {counts}, repeated")

        def dataset(train: bool) -> pd.ImageDataset:
            return pd.ImageDataset(npz, image_dir=data, train=train, image_size=args.size, seed=0)

        decode_ms, item_ms = breakdown(dataset(True), 40)
        print(
            f"main process, median per image: decode {decode_ms:.1f} ms, whole augmented item "
            f"{item_ms:.1f} ms (crop + augmentation {item_ms - decode_ms:.1f} ms)"
        )
        rows = []
        for label, train, workers in (
            ("augmented, 0 workers", True, 0),
            ("augmented, 2 workers", True, 2),
            ("no augmentation, 0 workers", False, 0),
            ("no augmentation, 2 workers", False, 2),
        ):
            rates = [
                loader_rate(dataset(train), workers=workers, batch_size=args.batch_size)
                for _ in range(args.repeats)
            ]
            rows.append((label, max(rates)))
        baseline = rows[0][1]
        print()
        print(f"best of {args.repeats} passes")
        print("| loader | images/s | vs augmented, 0 workers |")
        print("|---|---:|---:|")
        for label, rate in rows:
            print(f"| {label} | {rate:.0f} | {rate / baseline:.2f}x |")


if __name__ == "__main__":
    main()
