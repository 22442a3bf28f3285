"""Glue between the ProHMR assembly and pose-fitting: decoders, body callables, priors, metrics.

pose-fitting takes the model pieces as callables (docs/fitting.md#decoders-and-body-callables);
this module builds them from a loaded `ProHMR`:

- `flow_decoder`: ``z (B, 144) -> (global_orient (B, 1, 3, 3), body_pose (B, 23, 3, 3))``, the
  image-conditioned flow pushed through with fixed backbone features (the whole model in eval
  mode, features constants);
- `fit_mode`: ProHMR keypoint fitting started from a regression's mode (z = 0, its betas, the
  camera given), the one glue the demo, the evaluation and ``Predictor.fit`` use;
  `keypoint_error` its mean 2D distance; `fit_sequence` the same for sequences of frames
  fitted jointly (pose-fitting's `fit_keypoints_sequence`: shared betas, smoothness);
- `body_keypoints` (``path="fast"``: pose-body's joints-only skinning; ``"full"``: the full
  forward with vertices, as the original's SMPL call) giving the 44 keypoints;
- `load_pose_prior`: the SMPLify baseline's Gaussian-mixture pose prior, from a real
  ``gmm_08.pkl`` (read with pose-body's restricted unpickler) or fitted by EM to training
  poses when that file is absent (the case of the synthetic world);
- `pose_errors`: MPJPE / PA-MPJPE with the protocol of docs/evaluation.md#metrics (pelvis 39,
  keypoint list).

Everything here follows the device of the model and features; randomness takes seeds or
generators explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

import pose_geometry as pg
import pose_metrics as pm
from pose_body import BodyModel, safe_load_pickle
from pose_fitting import (
    FittingCamera,
    GaussianMixturePrior,
    KeypointFittingOptions,
    KeypointFittingResult,
    SequenceFittingOptions,
    SequenceFittingResult,
    fit_keypoints,
    fit_keypoints_sequence,
    fit_pose_gmm,
)

from .model import ProHMR, ProHMROutput

__all__ = [
    "FIT_COLOUR",
    "body_keypoints",
    "fit_mode",
    "fit_sequence",
    "flow_decoder",
    "freeze",
    "keypoint_error",
    "load_pose_prior",
    "mesh_vertices",
    "pose_errors",
    "regress",
    "rotation_spread",
    "training_body_poses",
]

#: Colour of fitted meshes in the pictures (light steel blue; the mode is pink, samples others).
FIT_COLOUR = (0.55, 0.7, 0.95)

Decoder = Callable[[Tensor], tuple[Tensor, Tensor]]
BodyCallable = Callable[[Tensor, Tensor, Tensor], Tensor]


def freeze(model: ProHMR) -> ProHMR:
    """Eval mode and ``requires_grad=False`` on every parameter (fitting never trains the net).

    With frozen parameters the backward pass of a fit stops at the latents, and the flow's LU
    layers use their cached inverses (they compute live while their parameters need gradients).
    Returns the same model.
    """
    model.eval()
    model.requires_grad_(False)
    return model


@torch.no_grad()
def regress(
    model: ProHMR,
    images: Tensor,
    *,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
) -> ProHMROutput:
    """Regression of a batch: (B, 3, S, S) crops -> ProHMROutput with N samples, mode first."""
    features = model.features(images).float()
    return model.decode(features, num_samples=num_samples, generator=generator)


def flow_decoder(model: ProHMR, features: Tensor) -> Decoder:
    """The image-conditioned flow as pose-fitting's decoder.

    Each call pushes the latents through the flow's inverse (``sample`` with the given z) and
    turns the 6D output into rotation matrices, like the pose head without its FC head. Ordinary
    autograd carries gradients to z (and to the flow's parameters only if they require grad;
    `freeze` stops that). The flow is read at every call, so later changes to its weights show.

    Args:
        model: a ProHMR in eval mode (see `freeze`); item-separable only then.
        features: (B, C) backbone features of the B images (constants of the fit).

    Returns:
        ``decoder(z (B, 144)) -> (global_orient (B, 1, 3, 3), body_pose (B, 23, 3, 3))``;
        ``decoder(zeros)`` is the regression's mode.
    """
    if model.training:
        raise ValueError("flow_decoder needs the model in eval mode (call freeze(model) first)")
    context = features.detach().float()
    glow = model.flow.flow

    def decoder(z: Tensor) -> tuple[Tensor, Tensor]:
        if z.shape[0] != context.shape[0]:
            raise ValueError(
                f"decoder: `z` has {z.shape[0]} rows, the features {context.shape[0]} images"
            )
        pose_6d = glow.sample(context, z=z.to(context.dtype)[:, None]).x[:, 0]
        # joint 0 is the global orientation
        rotmats = pg.rot6d_to_rotmat(pose_6d.reshape(-1, 24, 6))
        return rotmats[:, :1], rotmats[:, 1:]

    return decoder


def _fast_keypoints(
    body_model: BodyModel, global_orient: Tensor, body_pose: Tensor, betas: Tensor
) -> Tensor:
    return body_model.keypoints_only(
        global_orient=global_orient, body_pose=body_pose, betas=betas
    ).keypoints


def _full_keypoints(
    body_model: BodyModel, global_orient: Tensor, body_pose: Tensor, betas: Tensor
) -> Tensor:
    return body_model(global_orient=global_orient, body_pose=body_pose, betas=betas).keypoints


def body_keypoints(
    body_model: BodyModel, *, path: Literal["fast", "full"] = "fast"
) -> BodyCallable:
    """``(global_orient, body_pose, betas) -> (B, 44, 3)`` keypoints in metres (body frame).

    ``path="fast"`` uses `BodyModel.keypoints_only` (skins only the vertices the regressors
    read); ``"full"`` runs the full forward (every vertex, then the regressors), as the
    original's SMPL call does at every objective evaluation.
    """
    if path not in ("fast", "full"):
        raise ValueError(f"`path` must be 'fast' or 'full', got {path!r}")
    function = _fast_keypoints if path == "fast" else _full_keypoints

    def keypoints(global_orient: Tensor, body_pose: Tensor, betas: Tensor) -> Tensor:
        return function(body_model, global_orient, body_pose, betas)

    return keypoints


def fit_mode(
    model: ProHMR,
    output: ProHMROutput,
    keypoints_2d: Tensor,
    camera: FittingCamera,
    *,
    options: KeypointFittingOptions | None = None,
    body: BodyCallable | None = None,
) -> KeypointFittingResult:
    """ProHMR keypoint fitting of each image's regression (docs/fitting.md): z from 0 (the
    mode), the mode's betas and ``camera``'s translation, against 2D keypoints in ``camera``'s
    frame.

    Args:
        model: the frozen model (`freeze`) that produced ``output``.
        output: its regression of B images (``features``, ``betas`` and ``z`` are read).
        keypoints_2d: (B, 44, 3) targets in the pixels of ``camera``'s frame, with confidence.
        camera: `FittingCamera.full_frame` (the image) or `FittingCamera.crop` (the crop).
        options: pose-fitting's options (default ProHMR's; ``options.compile`` compiles the
            whole fitting objective).
        body: the body callable (default `body_keypoints` on the fast path).
    """
    options = KeypointFittingOptions() if options is None else options
    if body is None:
        body = body_keypoints(model.body_model, path="fast")
    return fit_keypoints(
        decoder=flow_decoder(model, output.features),
        body_model=body,
        keypoints_2d=keypoints_2d,
        init_z=torch.zeros_like(output.z[:, 0]),
        init_betas=output.betas[:, 0],
        init_camera_translation=camera.translation,
        focal_px=camera.focal_px,
        image_size_px=camera.image_size_px,
        center_px=camera.center_px,
        options=options,
    )


def fit_sequence(
    model: ProHMR,
    output: ProHMROutput,
    keypoints_2d: Tensor,
    camera: FittingCamera,
    *,
    options: SequenceFittingOptions | None = None,
    body: BodyCallable | None = None,
) -> SequenceFittingResult:
    """Temporal keypoint fitting of regressed frame sequences (docs/fitting.md#temporal-fitting):
    per-frame z from 0 (each frame's mode) and translations from ``camera``, betas shared per
    sequence starting at the mean of the frames' regressed betas, and the smoothness term of
    pose-fitting's `fit_keypoints_sequence`.

    Args:
        model: the frozen model (`freeze`) that produced ``output``.
        output: its regression of the N = G·T frames, sequence-major (frame t of sequence g
            is image g·T + t); ``features``, ``betas`` and ``z`` are read.
        keypoints_2d: (T, 44, 3) for one sequence or (G, T, 44, 3), pixels of ``camera``'s
            frame with confidence.
        camera: `FittingCamera` of the N frames (full frame or crop).
        options: `SequenceFittingOptions` (default: smoothness 100, shared betas, ProHMR's
            per-frame terms).
        body: the body callable (default `body_keypoints` on the fast path).

    Returns:
        pose-fitting's `SequenceFittingResult`, shaped (T, ...) or (G, T, ...) as the keypoints.
    """
    options = SequenceFittingOptions() if options is None else options
    if body is None:
        body = body_keypoints(model.body_model, path="fast")
    if not isinstance(keypoints_2d, Tensor) or keypoints_2d.ndim not in (3, 4):
        shape = tuple(keypoints_2d.shape) if isinstance(keypoints_2d, Tensor) else None
        raise ValueError(
            f"`keypoints_2d` must be a (T, 44, 3) or (G, T, 44, 3) tensor, got "
            f"{type(keypoints_2d).__name__} of shape {shape}"
        )
    lead = tuple(keypoints_2d.shape[:-2])
    frames = output.z.shape[0]
    if int(np.prod(lead)) != frames:
        raise ValueError(
            f"`keypoints_2d` has {lead} frames (shape {tuple(keypoints_2d.shape)}), the "
            f"regression `output` {frames} images: they must be the same frames"
        )

    def shaped(x: Tensor) -> Tensor:
        return x.reshape(*lead, *x.shape[1:])

    return fit_keypoints_sequence(
        decoder=flow_decoder(model, output.features),
        body_model=body,
        keypoints_2d=keypoints_2d,
        init_z=shaped(torch.zeros_like(output.z[:, 0])),
        init_betas=shaped(output.betas[:, 0]),
        init_camera_translation=shaped(camera.translation),
        focal_px=shaped(camera.focal_px),
        image_size_px=shaped(camera.image_size_px),
        center_px=shaped(camera.center_px),
        options=options,
    )


def keypoint_error(projected: Tensor, targets: Tensor) -> Tensor:
    """(B,) mean distance between (B, K, 2) projected keypoints and (B, K, 3) targets over the
    targets with confidence > 0, in the targets' units (NaN for an image without any)."""
    confident = targets[..., 2] > 0
    distance = (projected - targets[..., :2].to(projected.dtype)).norm(dim=-1)
    distance = torch.where(confident, distance, torch.zeros_like(distance))
    return distance.sum(-1) / confident.sum(-1).to(distance.dtype)


@torch.no_grad()
def mesh_vertices(
    body_model: BodyModel, global_orient: Tensor, body_pose: Tensor, betas: Tensor
) -> Tensor:
    """(..., V, 3) vertices (body frame, metres) of rotation-matrix poses, for rendering."""
    return body_model(
        global_orient=global_orient.float(), body_pose=body_pose.float(), betas=betas.float()
    ).vertices


def pose_errors(
    prediction: Tensor, target: Tensor, *, joints: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """MPJPE and PA-MPJPE in mm per image (docs/evaluation.md#metrics).

    Args:
        prediction: (B, 44, 3) predicted keypoints (metres, camera axes without translation).
        target: (B, 44, 4) ground truth with confidence (joints with 0 are left out).
        joints: the evaluation keypoint list (e.g. LSP-14).

    Returns:
        (mpjpe (B,), pa_mpjpe (B,)); MPJPE after subtracting the pelvis (keypoint 39) of both.
    """
    pred = prediction.float().cpu()
    gt = target.float().cpu()
    mask = gt[..., 3]
    joint_idx = list(joints)
    mpjpe = pm.mpjpe(pred, gt[..., :3], root_idx=pg.PELVIS_IDX_44, joint_idx=joint_idx, mask=mask)
    pa = pm.pa_mpjpe(pred, gt[..., :3], joint_idx=joint_idx, mask=mask)
    return mpjpe, pa


def rotation_spread(body_pose: Tensor) -> Tensor:
    """Disagreement of V views' body poses: mean over views and joints of ‖R_vj − R̄_j‖_F.

    Args:
        body_pose: (..., V, J, 3, 3) rotation matrices.

    Returns:
        (...) mean Frobenius distance to the plain element-wise mean over views
        (docs/fitting.md#multiview-refinement).
    """
    mean = body_pose.mean(dim=-4, keepdim=True)
    return torch.linalg.matrix_norm(body_pose - mean).mean(dim=(-1, -2))


# ------------------------------------------------------------------------------------------------
# The SMPLify baseline's pose prior
# ------------------------------------------------------------------------------------------------


def training_body_poses(files: Sequence[str | Path]) -> np.ndarray:
    """(P, 69) axis-angle body poses (global orientation dropped) of ProHMR-format npz files.

    Rows with ``has_body_pose == 0`` are skipped; mocap npz files (``body_pose`` (P, 72) and
    no flag) are read whole.
    """
    poses = []
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"training pose file not found: {path}")
        with np.load(path) as arrays:
            if "body_pose" not in arrays:
                raise ValueError(f"{path} has no 'body_pose' array (keys: {sorted(arrays)})")
            pose = np.asarray(arrays["body_pose"], dtype=np.float64)
            if pose.ndim != 2 or pose.shape[1] != 72:
                raise ValueError(f"'body_pose' in {path} must be (P, 72), got {pose.shape}")
            if "has_body_pose" in arrays:
                pose = pose[np.asarray(arrays["has_body_pose"]) > 0]
        poses.append(pose[:, 3:])
    if not poses or sum(len(p) for p in poses) == 0:
        raise ValueError(f"no body poses in {[str(f) for f in files]}")
    return np.concatenate(poses)


def load_pose_prior(
    gmm_path: str | Path | None,
    *,
    training_files: Sequence[str | Path] = (),
    num_components: int = 8,
    seed: int = 0,
) -> tuple[GaussianMixturePrior, str]:
    """The SMPLify pose prior and a one-line description of where it came from.

    Args:
        gmm_path: a ``gmm_08.pkl`` (SMPLify's file; read with pose-body's restricted
            unpickler) or an ``.npz`` with the same keys; None: fit one by EM to the body poses
            of `training_files` (`pose_fitting.fit_pose_gmm`).
        training_files: ProHMR-format or mocap npz files with ``body_pose`` (P, 72).
        num_components: K for the EM fit.
        seed: seed of the EM fit.

    Raises:
        FileNotFoundError: if `gmm_path` is given and missing.
        ValueError: if neither a file nor training poses are available.
    """
    if gmm_path is not None:
        path = Path(gmm_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"GMM prior file not found: {path} (SMPLify's gmm_08.pkl; omit --gmm to fit one "
                "to the training poses)"
            )
        if path.suffix == ".npz":
            with np.load(path) as arrays:
                mapping = {k: arrays[k] for k in arrays}
        else:
            mapping = safe_load_pickle(path)
        prior = GaussianMixturePrior.from_mapping(mapping)
        return prior, f"{path} ({prior.num_components} components)"
    if not training_files:
        raise ValueError("no GMM file and no training pose files: cannot build the pose prior")
    poses = training_body_poses(training_files)
    arrays = fit_pose_gmm(poses, num_components=num_components, seed=seed)
    prior = GaussianMixturePrior.from_mapping(arrays)
    names = ", ".join(Path(f).name for f in training_files)
    return prior, (
        f"EM fit, {num_components} components, to {len(poses)} training body poses ({names}); "
        "no gmm_08.pkl given"
    )
