"""The default end-to-end run on a synthetic world (until the training pipeline lands).

What it does, with no files from outside:
1. builds a synthetic skeleton on the SMPL kinematic tree (24 joints, rest offsets of an adult in
   metres) and poses it with random joint rotations and a random global orientation;
2. places each body in front of ProHMR's crop camera (weak-perspective (s, tx, ty) ->
   translation, focal 5000 px, 224 px crop), projects the joints to normalised crop coordinates
   and checks the crop <-> full-frame camera conversions against direct projection;
3. simulates a probabilistic regressor: N pose hypotheses per image in ProHMR's 6D rotation
   space (hypothesis 0 = the mode, closest to the truth), decoded by Gram–Schmidt;
4. scores them as the paper does: MPJPE and PA-MPJPE of the mode and best-of-n (n = 1 ... N),
   k-means quantisation of the N hypotheses to fewer ones, a Gaussian baseline around the mode,
   per-group breakdown, and PCK/AUC;
5. prints a final table and writes `summary.json` and `per_image.json` to the output folder.

    python tools/run_default.py [--out outputs/default] [--images 64] [--samples 1024] [--quick]

Seeded and deterministic: the same arguments give the same numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor

import pose_geometry as pg
import pose_metrics as pm

# Rest positions of the 24 SMPL joints of an adult (metres, y up, x to the subject's left), in
# SMPL joint order; approximate, but with the real tree's proportions.
_REST_JOINTS = (
    (0.000, 0.000, 0.000),  # pelvis
    (0.070, -0.090, 0.000),
    (-0.070, -0.090, 0.000),
    (0.000, 0.110, -0.020),  # hips, spine1
    (0.100, -0.470, 0.000),
    (-0.100, -0.470, 0.000),
    (0.000, 0.250, -0.010),  # knees, spine2
    (0.090, -0.870, -0.040),
    (-0.090, -0.870, -0.040),
    (0.000, 0.310, 0.010),  # ankles, spine3
    (0.110, -0.930, 0.090),
    (-0.110, -0.930, 0.090),
    (0.000, 0.520, -0.010),  # feet, neck
    (0.080, 0.420, -0.010),
    (-0.080, 0.420, -0.010),
    (0.000, 0.600, 0.040),  # collars, head
    (0.180, 0.430, -0.020),
    (-0.180, 0.430, -0.020),  # shoulders
    (0.430, 0.410, -0.040),
    (-0.430, 0.410, -0.040),  # elbows
    (0.680, 0.420, -0.040),
    (-0.680, 0.420, -0.040),  # wrists
    (0.770, 0.410, -0.050),
    (-0.770, 0.410, -0.050),  # hands
)
_FOCAL_PX = 5000.0
_CROP_PX = 224.0


def forward_kinematics(rotmats: Tensor, rest: Tensor) -> Tensor:
    """Pose the skeleton: (..., 24, 3, 3) local rotations, (24, 3) rest joints -> (..., 24, 3)."""
    parents = pg.SMPL_PARENTS
    offsets = rest - rest[[max(p, 0) for p in parents]]
    offsets[0] = rest[0]
    world_rot = [rotmats[..., 0, :, :]]
    world_pos = [offsets[0].expand(*rotmats.shape[:-3], 3)]
    for j in range(1, len(parents)):
        p = parents[j]
        world_pos.append(world_pos[p] + (world_rot[p] @ offsets[j, :, None])[..., 0])
        world_rot.append(world_rot[p] @ rotmats[..., j, :, :])
    return torch.stack(world_pos, dim=-2)


def sample_world(num_images: int, generator: torch.Generator) -> dict[str, Tensor]:
    """Random poses, orientations and crop cameras for `num_images` synthetic people."""
    body = 0.35 * torch.randn(num_images, 23, 3, generator=generator)
    yaw = (torch.rand(num_images, generator=generator) * 2 - 1) * math.pi
    # The body stands upright in camera axes (y down): a rotation by pi about x, then a yaw.
    upright = pg.axis_angle_to_rotmat(torch.tensor([math.pi, 0.0, 0.0]))
    turn = pg.axis_angle_to_rotmat(
        torch.stack([torch.zeros_like(yaw), yaw, torch.zeros_like(yaw)], -1)
    )
    global_orient = upright @ turn
    rotmats = torch.cat([global_orient[:, None], pg.axis_angle_to_rotmat(body)], dim=1)
    camera = torch.stack(
        [
            0.8 + 0.2 * torch.rand(num_images, generator=generator),  # s
            0.1 * torch.randn(num_images, generator=generator),  # tx
            0.1 * torch.randn(num_images, generator=generator) + 0.1,  # ty
        ],
        dim=-1,
    )
    return {"rotmats": rotmats, "camera": camera, "yaw": yaw}


def check_cameras(joints: Tensor, camera: Tensor) -> dict[str, float]:
    """Project joints through the crop camera and the full-frame camera; compare the two paths."""
    translation = pg.weak_perspective_to_translation(
        camera, focal_length_px=_FOCAL_PX, crop_size_px=_CROP_PX
    )
    # ProHMR's training projection: focal f/224, principal point 0 -> normalised crop coordinates.
    uv_norm = pg.project_points(joints, focal_px=_FOCAL_PX / _CROP_PX, translation=translation)
    uv_crop_px = pg.project_points(
        joints,
        focal_px=_FOCAL_PX,
        center_px=torch.full((2,), _CROP_PX / 2),
        translation=translation,
    )
    crop_path_error = (
        (pg.crop_pixels_to_normalized(uv_crop_px, crop_size_px=_CROP_PX) - uv_norm).abs().max()
    )
    # Full frame: the crop is a 224 px box centred at the image centre of a 640 x 480 image; then
    # the full-frame camera must reproduce the crop camera's projection of the body origin.
    image_size = torch.tensor([640.0, 480.0]).expand(camera.shape[0], 2)
    box_center = image_size / 2
    box_size = torch.full((camera.shape[0],), _CROP_PX)
    full_t = pg.crop_camera_to_full_frame_translation(
        camera, box_center_px=box_center, box_size_px=box_size, image_size_px=image_size
    )
    uv_full = pg.project_points(
        joints, focal_px=_FOCAL_PX, center_px=box_center, translation=full_t
    )
    uv_back = pg.image_pixels_to_crop_normalized(
        uv_full, box_center_px=box_center, box_size_px=box_size
    )
    round_trip = pg.full_frame_translation_to_crop_camera(
        full_t, box_center_px=box_center, box_size_px=box_size, image_size_px=image_size
    )
    return {
        "fraction_of_joints_inside_crop": float((uv_norm.abs() <= 0.5).all(-1).float().mean()),
        "crop_pixel_path_max_error": float(crop_path_error),
        "full_frame_path_max_error": float((uv_back - uv_norm).abs().max()),
        "camera_round_trip_max_error": float((round_trip - camera).abs().max()),
    }


def simulate_posterior(rotmats: Tensor, num_samples: int, generator: torch.Generator) -> Tensor:
    """N hypotheses per image in 6D space (sample 0 = the mode), decoded to rotations.

    Returns (B, N, 24, 3, 3). The mode carries a small error; the other samples spread around the
    true pose with a larger one, so that more samples get closer to the truth (as a calibrated
    posterior would). The global orientation is the mode's in every sample.
    """
    six = pg.rotmat_to_rot6d(rotmats)  # (B, 24, 6)
    mode = six + 0.06 * torch.randn(six.shape, generator=generator)
    noise = torch.randn(six.shape[0], num_samples - 1, *six.shape[1:], generator=generator)
    samples = torch.cat([mode[:, None], six[:, None] + 0.1 * noise], dim=1)
    samples[..., 0, :] = mode[:, None, 0]
    return pg.rot6d_to_rotmat(samples)


def write_json_atomic(path: Path, payload: object) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/default"), help="output folder")
    parser.add_argument("--images", type=int, default=64, help="number of synthetic images")
    parser.add_argument("--samples", type=int, default=1024, help="hypotheses per image (N)")
    parser.add_argument("--clusters", type=int, default=16, help="k for k-means quantisation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="16 images, 256 samples (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.samples = 16, 256
    for name in ("images", "samples", "clusters"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.clusters > args.samples:
        parser.error(f"--clusters ({args.clusters}) must not exceed --samples ({args.samples})")

    start = time.perf_counter()
    generator = torch.Generator().manual_seed(args.seed)
    rest = torch.tensor(_REST_JOINTS)
    world = sample_world(args.images, generator)
    gt_joints = forward_kinematics(world["rotmats"], rest)  # (B, 24, 3), body frame in camera axes
    camera_checks = check_cameras(gt_joints, world["camera"])

    # Representation check: axis-angle -> matrix -> 6D -> matrix -> axis-angle.
    aa = pg.rotmat_to_axis_angle(world["rotmats"])
    aa_back = pg.rotmat_to_axis_angle(
        pg.rot6d_to_rotmat(pg.rotmat_to_rot6d(pg.axis_angle_to_rotmat(aa)))
    )
    rotation_round_trip = float((pg.axis_angle_to_rotmat(aa_back) - world["rotmats"]).abs().max())

    hypotheses = forward_kinematics(
        simulate_posterior(world["rotmats"], args.samples, generator), rest
    )
    result = pm.best_of_n(hypotheses, gt_joints, root_idx=0)
    kmeans = pm.kmeans_best_of_k(
        hypotheses,
        gt_joints,
        num_clusters=args.clusters,
        root_idx=0,
        generator=torch.Generator().manual_seed(args.seed),
    )
    gaussian = pm.gaussian_baseline_samples(
        hypotheses[:, 0],
        num_samples=args.samples,
        sigma_m=0.05,
        generator=torch.Generator().manual_seed(args.seed + 1),
    )
    gaussian_result = pm.best_of_n(gaussian, gt_joints, root_idx=0)

    accumulator = pm.MetricAccumulator()
    side = [
        "|yaw| < 90 deg" if abs(float(y)) < math.pi / 2 else "|yaw| >= 90 deg" for y in world["yaw"]
    ]
    accumulator.add(
        {
            "mode_mpjpe": result.mode_mpjpe,
            "mode_pa_mpjpe": result.mode_pa_mpjpe,
            f"min{args.samples}_mpjpe": result.min_mpjpe,
            f"min{args.samples}_pa_mpjpe": result.min_pa_mpjpe,
            f"kmeans{args.clusters}_min_pa_mpjpe": kmeans.min_pa_mpjpe,
            f"gauss5cm_min{args.samples}_pa_mpjpe": gaussian_result.min_pa_mpjpe,
        },
        groups={"orientation": side},
    )
    curve = {}
    n = 1
    while n <= args.samples:
        curve[n] = float(result.best_of_first(n).pa_mpjpe.mean())
        n *= 4
    errors_mm = pm.joint_position_errors(hypotheses[:, 0], gt_joints, root_idx=0)
    pck = float(pm.pck(errors_mm, threshold_mm=150.0).mean())
    auc = float(pm.auc(errors_mm).mean())

    elapsed = time.perf_counter() - start
    summary = {
        "images": args.images,
        "samples": args.samples,
        "clusters": args.clusters,
        "seed": args.seed,
        "seconds": round(elapsed, 3),
        "rotation_round_trip_max_error": rotation_round_trip,
        "camera_checks": camera_checks,
        "mode_pck150": pck,
        "mode_auc": auc,
        "pa_mpjpe_best_of_first_n_mm": curve,
        "metrics": accumulator.to_dict(group_by="orientation"),
    }
    write_json_atomic(args.out / "summary.json", summary)
    accumulator.write_json(
        args.out / "per_image.json", group_by="orientation", include_per_image=True
    )

    print(
        f"synthetic world: {args.images} images, {args.samples} hypotheses each, seed {args.seed}"
    )
    print(f"rotation round trip (aa -> R -> 6D -> R -> aa): max error {rotation_round_trip:.2e}")
    for key, value in camera_checks.items():
        print(f"{key}: {value:.3g}")
    print("\nPA-MPJPE (mm) of the best of the first n hypotheses:")
    print("  " + "  ".join(f"n={k}: {v:.1f}" for k, v in curve.items()))
    print(f"mode PCK@150mm {pck:.3f}, AUC {auc:.3f}\n")
    print(accumulator.to_markdown(group_by="orientation"))
    print(
        f"\nwrote {args.out / 'summary.json'} and {args.out / 'per_image.json'} in {elapsed:.1f} s"
    )
    ok = camera_checks["crop_pixel_path_max_error"] < 1e-4 and rotation_round_trip < 1e-4
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
