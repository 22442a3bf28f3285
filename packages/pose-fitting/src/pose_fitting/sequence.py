"""Temporal keypoint fitting: ProHMR's fitting of T consecutive frames at once (docs/fitting.md).

Every frame t of a sequence keeps what `fit_keypoints` gives an image: its own latent z_t (the
decoder is conditioned on frame t's image, so the learned image-conditioned prior ‖z_t‖² holds
per frame), its own camera translation, and the same robust reprojection term. Two things tie
the frames together:

- one set of betas for the whole sequence (`share_betas`, default on; a person does not change
  shape between frames), started at the mean of the frames' initial betas;
- a smoothness term on the 3D body keypoints (the body model's output, body frame, metres):
  the squared accelerations ``Σ_t Σ_k ‖j[t+1] - 2 j[t] + j[t-1]‖²`` (`acceleration_term`),
  weighted by ``smoothness_weight²``.

The objective of a sequence is

    E = Σ_t [ reprojection_t + w_pose² ‖z_t‖² + w_shape² ‖β‖² ] + w_smooth² · Σ accelerations²

i.e. the sum of the per-frame objectives of `fit_keypoints` (with the betas tied, the shape
prior counted once per frame so the balance of data and priors is that of per-frame fitting)
plus the smoothness term. With ``smoothness_weight = 0`` and ``share_betas=False`` it *is* the
sum of the independent per-frame objectives, so its minimum is the per-frame fits' (the tests
check this).

How it maps onto the batched core: a sequence is one item (row) of `minimize`, whose variables
are all its frames' latents and translations and its betas; several sequences are several rows,
independent as ever (own L-BFGS state, own stopping). This keeps the core unchanged (its items
must be separable, and the smoothness term couples frames, so frames cannot be rows) and reuses
its optimisers, stopping rules and reports; the decoder and body model see the G·T frames
flattened in sequence-major order (frame t of sequence g is row g·T + t), one batched call per
objective evaluation. The camera translation is per frame and is not smoothed (in crop mode the
crops move, so translations of consecutive frames need not be close).

Frames with fewer than `min_confident_keypoints` confident keypoints are still fitted (the
priors and the smoothness hold them; this is what temporal fitting is for) and are flagged in
``weak_frames``; a sequence none of whose frames has enough is not optimised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from pose_fitting._checks import (
    check_callable,
    check_finite,
    check_fit_dtype,
)
from pose_fitting._common import (
    TOO_FEW_KEYPOINTS,
    camera_intrinsics,
    check_option_ranges,
    finish_keypoints,
)
from pose_fitting.core import FitReport, minimize
from pose_fitting.keypoint_fitting import BodyModel, Decoder, KeypointFittingOptions, frame_terms
from pose_fitting.terms import acceleration_term, image_size_weight
from pose_geometry import check_floating, check_same_device, check_tensor

__all__ = ["SequenceFittingOptions", "SequenceFittingResult", "fit_keypoints_sequence"]

#: Fewest frames of a sequence: the acceleration needs three.
MIN_SEQUENCE_FRAMES = 3


@dataclass(frozen=True)
class SequenceFittingOptions:
    """Options of `fit_keypoints_sequence`.

    Attributes:
        smoothness_weight: weight of the squared accelerations of the 3D keypoints (metres per
            frame²), entering squared (100 → 10⁴). 0 switches the term off.
        share_betas: one betas vector per sequence (True) or one per frame (False).
        frame: the per-frame terms and the optimiser, as for `fit_keypoints` (prior weights,
            robust scale, ``use_hips``, optimizer, stopping rules, L-BFGS settings, compile).
            Its stopping rules apply per sequence; ``min_confident_keypoints`` flags frames
            (``weak_frames``) instead of skipping them.
    """

    smoothness_weight: float = 100.0
    share_betas: bool = True
    frame: KeypointFittingOptions = field(default_factory=KeypointFittingOptions)

    def __post_init__(self) -> None:
        check_option_ranges(self, non_negative=("smoothness_weight",), positive=())
        if not isinstance(self.frame, KeypointFittingOptions):
            raise TypeError(
                f"`frame` must be a KeypointFittingOptions, got {type(self.frame).__name__}"
            )


@dataclass(frozen=True)
class SequenceFittingResult:
    """Result of `fit_keypoints_sequence`; ``...`` is () for (T, ...) inputs, (G,) for (G, T, ...).

    Attributes:
        z: (..., T, D) optimised latents.
        betas: (..., T, S) betas per frame (the same vector in every frame with `share_betas`).
        camera_translation: (..., T, 3) optimised translations, metres.
        global_orient: (..., T, 1, 3, 3), body_pose: (..., T, J, 3, 3): decoder output at `z`.
        keypoints_3d: (..., T, K, 3) body-model keypoints (body frame, metres, no camera).
        projected_keypoints_2d: (..., T, K, 2) keypoints projected with the fitted cameras.
        initial_projected_keypoints_2d: (..., T, K, 2) the same at the initial values.
        loss: (...) total objective per sequence.
        frame_terms: weighted per-frame terms, each (..., T): ``reprojection``, ``pose_prior``,
            ``shape_prior``.
        terms: per-sequence terms, each (...): the frame terms summed over T, and
            ``smoothness`` (weighted).
        weak_frames: (..., T) bool, frames with fewer than ``min_confident_keypoints``
            confident keypoints (fitted all the same).
        report: per-sequence `FitReport` (G items; G = 1 for a (T, ...) input).
    """

    z: Tensor
    betas: Tensor
    camera_translation: Tensor
    global_orient: Tensor
    body_pose: Tensor
    keypoints_3d: Tensor
    projected_keypoints_2d: Tensor
    initial_projected_keypoints_2d: Tensor
    loss: Tensor
    frame_terms: Mapping[str, Tensor] = field(repr=False)
    terms: Mapping[str, Tensor] = field(repr=False)
    weak_frames: Tensor = field(repr=False)
    report: FitReport = field(repr=False)


def _sequence_tensor(
    name: str, value: object, lead: tuple[int, ...], trailing: tuple[int | None, ...], like: Tensor
) -> Tensor:
    """Check a (*lead, *trailing) floating tensor on `like`'s device; cast to its dtype."""
    x = check_tensor(name, value)
    check_floating(name, x)
    shape = tuple(x.shape)
    ok = len(shape) == len(lead) + len(trailing) and shape[: len(lead)] == lead
    if ok:
        ok = all(t is None or s == t for s, t in zip(shape[len(lead) :], trailing, strict=True))
    if not ok:
        dims = ", ".join([*map(str, lead), *("N" if t is None else str(t) for t in trailing)])
        raise ValueError(f"`{name}` must have shape ({dims}), got {shape}")
    check_same_device("init_z", like, name, x)
    return x.to(dtype=like.dtype)


def fit_keypoints_sequence(
    *,
    decoder: Decoder,
    body_model: BodyModel,
    keypoints_2d: Tensor,
    init_z: Tensor,
    init_betas: Tensor,
    init_camera_translation: Tensor,
    focal_px: Tensor | float,
    image_size_px: Tensor,
    center_px: Tensor | None = None,
    options: SequenceFittingOptions | None = None,
) -> SequenceFittingResult:
    """Fit sequences of frames to 2D keypoints jointly (see the module docstring).

    Args:
        decoder: ``z (N, D) -> (global_orient (N, 1, 3, 3), body_pose (N, J, 3, 3))`` with
            N = G·T latents in sequence-major order; item-separable (a flow in eval mode
            conditioned on each frame's image).
        body_model: ``(global_orient, body_pose, betas (N, S)) -> keypoints (N, K, 3)`` metres.
        keypoints_2d: (G, T, K, 3) or (T, K, 3) targets, pixels and confidence, as for
            `fit_keypoints` (confidence 0 = missing; NaN coordinates allowed there).
        init_z: (G, T, D) or (T, D) initial latents (ProHMR: 0), T >= 3, float32 or float64.
        init_betas: (..., T, S) per-frame initial betas (ProHMR: the regressed ones); with
            `share_betas` the sequence starts at their mean over the frames.
        init_camera_translation: (..., T, 3) initial translations, metres.
        focal_px: a float, (..., T) or (..., T, 2) focal lengths in pixels.
        image_size_px: (..., T, 2) frame sizes (W, H) in pixels.
        center_px: (..., T, 2) principal points; default the frame centres.
        options: `SequenceFittingOptions`.

    Returns:
        `SequenceFittingResult`.

    Raises:
        TypeError: non-tensor inputs, non-callable decoder or body model, a dtype other than
            float32/float64 for `init_z`.
        ValueError: T < 3 (named: the acceleration needs three frames), shapes that do not
            match `init_z`'s (G, T), NaN/inf inputs, bad focal lengths or image sizes, tensors
            on another device than `init_z`, callables returning wrong shapes.
    """
    options = SequenceFittingOptions() if options is None else options
    frame = options.frame
    check_callable("decoder", decoder)
    check_callable("body_model", body_model)
    z_in = check_tensor("init_z", init_z)
    check_floating("init_z", z_in)
    if z_in.ndim not in (2, 3):
        raise ValueError(f"`init_z` must have shape (T, D) or (G, T, D), got {tuple(z_in.shape)}")
    check_fit_dtype("init_z", z_in)
    grouped = z_in.ndim == 3
    z0 = z_in if grouped else z_in.unsqueeze(0)
    G, T, D = z0.shape
    if G == 0:
        raise ValueError(f"`init_z` must hold at least one sequence, got shape {tuple(z_in.shape)}")
    if T < MIN_SEQUENCE_FRAMES:
        raise ValueError(
            f"`init_z` must hold at least {MIN_SEQUENCE_FRAMES} frames per sequence (the "
            f"acceleration term needs three), got T = {T} (shape {tuple(z_in.shape)})"
        )
    check_finite("init_z", z0.reshape(G * T, D))
    N = G * T
    lead = (G, T) if grouped else (T,)
    like = z0

    def flat(name: str, value: object, trailing: tuple[int | None, ...]) -> Tensor:
        x = _sequence_tensor(name, value, lead, trailing, like)
        x = x.reshape(N, *x.shape[len(lead) :])
        check_finite(name, x.reshape(N, -1))
        return x

    betas_frames = flat("init_betas", init_betas, (None,))
    S = betas_frames.shape[-1]
    translation0 = flat("init_camera_translation", init_camera_translation, (3,)).reshape(G, T, 3)
    kp_t = _sequence_tensor("keypoints_2d", keypoints_2d, lead, (None, 3), like)
    kp = finish_keypoints(
        "keypoints_2d", kp_t.reshape(N, *kp_t.shape[-2:]), like, "init_z", use_hips=frame.use_hips
    )
    K = kp.shape[1]
    if isinstance(focal_px, Tensor) and focal_px.ndim >= len(lead):
        check_same_device("init_z", like, "focal_px", focal_px)
        if tuple(focal_px.shape[: len(lead)]) != lead:
            raise ValueError(
                f"`focal_px` must be a float or have shape {lead} or {(*lead, 2)}, got "
                f"{tuple(focal_px.shape)}"
            )
        focal_flat: Tensor | float = focal_px.reshape(N, *focal_px.shape[len(lead) :])
    else:
        focal_flat = focal_px
    size_flat = flat("image_size_px", image_size_px, (2,))
    center_flat = None if center_px is None else flat("center_px", center_px, (2,))
    focal, center, size = camera_intrinsics(focal_flat, size_flat, center_flat, N, like)
    data_weight = image_size_weight(size, reference_px=frame.reference_size_px)
    w_smooth = options.smoothness_weight**2

    def frame_betas(betas: Tensor) -> Tensor:
        if options.share_betas:
            return betas.unsqueeze(1).expand(G, T, S).reshape(N, S)
        return betas.reshape(N, S)

    def evaluate(p: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], Tensor, tuple]:
        betas = frame_betas(p["betas"])
        terms, (global_orient, body_pose, joints, projected) = frame_terms(
            decoder,
            body_model,
            p["z"].reshape(N, D),
            betas,
            p["camera_translation"].reshape(N, 3),
            keypoints=kp,
            focal=focal,
            center=center,
            data_weight=data_weight,
            options=frame,
        )
        per_frame = {name: value.reshape(G, T) for name, value in terms.items()}
        smoothness = w_smooth * acceleration_term(joints.reshape(G, T, K, 3))
        return per_frame, smoothness, (global_orient, body_pose, betas, joints, projected)

    def objective(p: dict[str, Tensor]) -> Tensor:
        per_frame, smoothness, _ = evaluate(p)
        return sum(term.sum(dim=1) for term in per_frame.values()) + smoothness

    if options.share_betas:
        betas0 = betas_frames.reshape(G, T, S).mean(dim=1)
    else:
        betas0 = betas_frames.reshape(G, T, S)
    initial = {"z": z0.contiguous(), "betas": betas0, "camera_translation": translation0}
    counts = (kp[..., 2] > frame.confidence_threshold).sum(dim=-1).reshape(G, T)
    weak = counts < frame.min_confident_keypoints
    skip: list[str | None] = [
        f"{TOO_FEW_KEYPOINTS}: no frame has {frame.min_confident_keypoints} with confidence > "
        f"{frame.confidence_threshold:g}"
        if bool(weak[g].all())
        else None
        for g in range(G)
    ]
    with torch.no_grad():
        projected0 = evaluate(initial)[2][4]
    result = minimize(
        objective,
        initial,
        method=frame.optimizer,
        stopping=frame.stopping,
        lbfgs=frame.lbfgs,
        adam=frame.adam,
        skip_reasons=skip,
        compile=frame.compile,
    )
    with torch.no_grad():
        per_frame, smoothness, (orient, pose, betas, joints, projected) = evaluate(result.params)

    def out(x: Tensor) -> Tensor:
        x = x.detach().reshape(G, T, *x.shape[1:])
        return x if grouped else x[0]

    def per_sequence(x: Tensor) -> Tensor:
        x = x.detach()
        return x if grouped else x[0]

    terms = {name: per_sequence(value.sum(dim=1)) for name, value in per_frame.items()}
    terms["smoothness"] = per_sequence(smoothness)
    return SequenceFittingResult(
        z=per_sequence(result.params["z"]),
        betas=out(betas),
        camera_translation=per_sequence(result.params["camera_translation"]),
        global_orient=out(orient),
        body_pose=out(pose),
        keypoints_3d=out(joints),
        projected_keypoints_2d=out(projected),
        initial_projected_keypoints_2d=out(projected0),
        loss=per_sequence(result.loss),
        frame_terms={name: per_sequence(value) for name, value in per_frame.items()},
        terms=terms,
        weak_frames=per_sequence(weak),
        report=result.report,
    )
