"""Walk the latent space of the pose flow around the mode and render a grid.

    python tools/visualize_latent.py --checkpoint outputs/default/checkpoints/last.pt
    python tools/visualize_latent.py --checkpoint ckpt.pt --dataset SYNTH-VAL --index 3 \\
        --grid 7 --radius 8.5 --views side front --out latent

For one image (item ``--index`` of a registry dataset, by default the config's first validation
set), the flow is conditioned on its features; starting at z = 0 (the mode), two random
directions of the 144-dimensional latent space are drawn (Gaussian, then orthonormalised), and
the poses decoded at ``z = a·u1 + b·u2`` for a grid of (a, b) in [-radius, radius]² are rendered
one per cell, seen from the side (camera turned 90° about the vertical) and, with ``--views
front``, from the camera. The default radius is sqrt(144 / 2) ≈ 8.5, so the grid's corners
have the norm of a typical sample (‖z‖ ≈ sqrt(144) = 12) and the centre cell is the mode (pink,
framed). Shape (betas) is the regression's, so only the pose changes (``--fix-orientation``
also keeps the mode's global orientation, leaving the body pose alone to vary). Written:
``latent_<view>.png`` (the grid) and ``latent_input.png`` (the conditioning crop).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from pipeline.cli import add_precision_argument, at_least, check_output_args, positive_float
from pipeline.runtime import pick_device
from pipeline.session import config_registry, load_prohmr_checkpoint, registry_entry

import pose_data as pdata
from pose_body.render import Mesh, render_meshes, rotate_about_vertical
from pose_data.io import atomic_write
from prohmr_model.evaluation import check_finite_predictions
from prohmr_model.fitting import FIT_COLOUR, flow_decoder, freeze, mesh_vertices
from prohmr_model.visualize import MODE_COLOUR, denormalize


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dataset", default=None, help="registry name (default: first val set)")
    parser.add_argument("--index", type=at_least(0), default=0, help="item of the dataset")
    parser.add_argument(
        "--grid", type=at_least(2), default=7, help="cells per side (odd: mode centred)"
    )
    parser.add_argument("--radius", type=positive_float, default=None, help="default sqrt(D / 2)")
    parser.add_argument("--views", nargs="+", choices=("side", "front"), default=["side"])
    parser.add_argument("--cell", type=at_least(1), default=160, help="cell side in pixels")
    parser.add_argument("--seed", type=at_least(0), default=0, help="seed of the two directions")
    parser.add_argument(
        "--fix-orientation",
        action="store_true",
        help="keep the mode's global orientation in every cell (body pose changes only)",
    )
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=Path("latent"), help="output folder")
    args = parser.parse_args(argv)
    check_output_args(parser, dirs={"--out": args.out})
    return args


def latent_grid(
    dim: int, *, grid: int, radius: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grid, grid, D) latents ``a·u1 + b·u2`` and the (2, D) orthonormal directions.

    Row r moves along u2 (b from -radius to radius), column c along u1.
    """
    raw = torch.randn(2, dim, generator=generator, dtype=torch.float64)
    u1 = raw[0] / raw[0].norm()
    u2 = raw[1] - (raw[1] @ u1) * u1
    u2 = u2 / u2.norm()
    steps = torch.linspace(-radius, radius, grid, dtype=torch.float64)
    z = steps[None, :, None] * u1 + steps[:, None, None] * u2
    return z.float(), torch.stack([u1, u2]).float()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    model, config = load_prohmr_checkpoint(
        args.checkpoint, device=device, overrides=args.set, precision=args.precision
    )
    freeze(model)
    registry = config_registry(config)
    name = args.dataset or next(iter(config.data.val))
    entry = registry_entry(registry, name, kinds=("image",))
    dataset = pdata.ImageDataset(
        entry.file, image_dir=entry.image_dir, train=False, image_size=config.data.image_size
    )
    if args.index >= len(dataset):
        raise SystemExit(f"--index must be < {len(dataset)} (the size of {name}), got {args.index}")
    item = dataset[args.index]
    image = torch.from_numpy(item["img"])[None].to(device)
    dim = model.flow.flow.features
    radius = math.sqrt(dim / 2) if args.radius is None else args.radius
    generator = torch.Generator().manual_seed(args.seed)
    z, _ = latent_grid(dim, grid=args.grid, radius=radius, generator=generator)
    with torch.no_grad():
        features = model.features(image).float()
        mode = model.decode(features, num_samples=1)
        check_finite_predictions(
            mode.keypoints_3d,
            source=f"checkpoint {args.checkpoint}",
            where=f" for image {args.index} of {name}",
        )
        decoder = flow_decoder(model, features.expand(args.grid * args.grid, -1))
        orient, pose = decoder(z.reshape(-1, dim).to(device))
        if args.fix_orientation:
            orient = mode.global_orient[:, 0].expand_as(orient)
        betas = mode.betas[:, 0].expand(len(orient), -1)
        vertices = mesh_vertices(model.body_model, orient, pose, betas).cpu().numpy()
    faces = model.body_model.faces.cpu().numpy()
    args.out.mkdir(parents=True, exist_ok=True)
    centre = (args.grid // 2, args.grid // 2) if args.grid % 2 else None
    for view in args.views:
        picture = _grid_picture(
            vertices.reshape(args.grid, args.grid, -1, 3),
            faces,
            cell=args.cell,
            side=view == "side",
            centre=centre,
            title=f"{name}[{args.index}], {view} view: z = a u1 + b u2, a, b in "
            f"[-{radius:.1f}, {radius:.1f}] (u1 across, u2 down)",
        )
        _save(args.out / f"latent_{view}.png", picture)
        print(f"wrote {args.out / f'latent_{view}.png'} ({args.grid} x {args.grid} poses)")
    _save(args.out / "latent_input.png", denormalize(image[0]))
    return 0


def _grid_picture(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    cell: int,
    side: bool,
    centre: tuple[int, int] | None,
    title: str,
) -> np.ndarray:
    """(R, C, V, 3) camera-frame vertices -> one picture, a rendered body per cell."""
    rows, cols = vertices.shape[:2]
    focal = 2.5 * cell
    depth = focal * 2.4 / cell  # a 2.4 m tall field of view per cell
    cells = []
    for r in range(rows):
        row = []
        for c in range(cols):
            verts = vertices[r, c] - vertices[r, c].mean(axis=0)
            if side:
                verts = rotate_about_vertical(verts, angle_deg=90.0, center=(0.0, 0.0, 0.0))
            is_mode = centre == (r, c)
            mesh = Mesh(
                vertices=verts + np.array([0.0, 0.0, depth]),
                faces=faces,
                color=MODE_COLOUR if is_mode else FIT_COLOUR,
            )
            panel = render_meshes(
                [mesh],
                image_size=(cell, cell),
                focal_px=focal,
                center_px=(cell / 2, cell / 2),
            )
            if is_mode:
                cv2.rectangle(panel, (1, 1), (cell - 2, cell - 2), (230, 90, 170), 2)
            cv2.rectangle(panel, (0, 0), (cell - 1, cell - 1), (215, 215, 215), 1)
            row.append(panel)
        cells.append(np.concatenate(row, axis=1))
    grid = np.concatenate(cells, axis=0)
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    scale = max(0.35, min(0.6, grid.shape[1] / 1600))
    cv2.putText(header, title, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, grid], axis=0)


def _save(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write(path, lambda f: f.write(encoded.tobytes()))


if __name__ == "__main__":
    sys.exit(main())
