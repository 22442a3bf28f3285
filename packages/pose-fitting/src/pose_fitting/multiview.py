"""Multiview refinement (ProHMR paper Eq. 12, docs/fitting.md#multiview-refinement).

V views of the same person at the same time each get their own latent z_v (the decoder is
conditioned on view v's image); the body-pose rotations decoded from them are pulled together:

    E = 300² · Σ_v Σ_j ‖R_vj - R̄_j‖_F²  +  1² · Σ_v ‖z_v‖²

with R_vj the body-pose rotations (joints 1..J, the global orientation excluded: each view keeps
its own) and R̄_j their element-wise mean over views (not re-orthonormalised). The betas are the
mean of the per-view regressed betas, shared and fixed. There is no image term in the original.

Improvement beyond the original (``use_reprojection=True``, off by default): add each view's
Geman–McClure reprojection term of ProHMR's keypoint fitting (`fit_keypoints`) and optimise each
view's camera translation with it (and, with ``optimize_betas=True``, the shared betas under the
6²·‖β‖² prior), so the views agree with each other *and* with their images.

Groups: several frames can be refined in one call by passing (G, V, ...) inputs; every group is
one item of the batched core (its own L-BFGS state and stopping), so groups are independent.
The decoder sees the G·V latents flattened in group-major order, (G·V, D).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from pose_fitting._checks import (
    check_callable,
    check_finite,
    check_fit_dtype,
    check_keypoints_output,
    check_pose_output,
)
from pose_fitting._common import camera_intrinsics, check_option_ranges, finish_keypoints
from pose_fitting.core import AdamOptions, FitReport, LBFGSOptions, StoppingRules, minimize
from pose_fitting.terms import (
    image_size_weight,
    reprojection_term,
    rotation_consistency,
    squared_norm,
)
from pose_geometry import check_floating, check_same_device, check_tensor, project_points

__all__ = ["MultiviewOptions", "MultiviewResult", "refine_multiview"]

Decoder = Callable[[Tensor], tuple[Tensor, Tensor]]
BodyModel = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class MultiviewOptions:
    """Options of `refine_multiview`; defaults are ProHMR's (docs/fitting.md#multiview-refinement).

    Attributes:
        consistency_weight: weight of the rotation-consistency term, entering squared (300).
        pose_prior_weight: weight of ‖z‖², entering squared (1).
        use_reprojection: add the per-view reprojection term (an improvement beyond the
            original; off by default) and optimise the per-view camera translations.
        optimize_betas: with `use_reprojection`, also optimise the shared betas (starting at
            the mean of the views) under ``shape_prior_weight² · ‖β‖²``.
        shape_prior_weight: weight of ‖β‖² when `optimize_betas` (6, as in keypoint fitting).
        sigma_px: Geman–McClure scale of the reprojection term (100 px).
        reference_size_px: reprojection weighted by ``(reference / max(W, H))²`` (1000).
        use_hips: as in `KeypointFittingOptions`.
        optimizer: ``"lbfgs"`` (the original) or ``"adam"``.
        stopping: per-group stopping rules (max_iterations 30 as the eval script).
        lbfgs: L-BFGS settings; adam: Adam settings.
    """

    consistency_weight: float = 300.0
    pose_prior_weight: float = 1.0
    use_reprojection: bool = False
    optimize_betas: bool = False
    shape_prior_weight: float = 6.0
    sigma_px: float = 100.0
    reference_size_px: float = 1000.0
    use_hips: bool = False
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    stopping: StoppingRules = field(default_factory=StoppingRules)
    lbfgs: LBFGSOptions = field(default_factory=LBFGSOptions)
    adam: AdamOptions = field(default_factory=AdamOptions)

    def __post_init__(self) -> None:
        check_option_ranges(
            self,
            non_negative=("consistency_weight", "pose_prior_weight", "shape_prior_weight"),
            positive=("sigma_px", "reference_size_px"),
        )
        if self.optimize_betas and not self.use_reprojection:
            raise ValueError(
                "`optimize_betas=True` needs `use_reprojection=True` (without an image term the "
                "betas would only shrink towards 0)"
            )


@dataclass(frozen=True)
class MultiviewResult:
    """Result of `refine_multiview`; ``...`` is () for a (V, D) input and (G,) for (G, V, D).

    Attributes:
        z: (..., V, D) refined latents.
        global_orient: (..., V, 1, 3, 3) per-view root rotations.
        body_pose: (..., V, J, 3, 3) per-view body poses (pulled together).
        betas: (..., S) the shared betas.
        keypoints_3d: (..., V, K, 3) body-model keypoints per view (body frame, metres).
        camera_translation: (..., V, 3) fitted translations with `use_reprojection`, else None.
        loss: (...) final objective per group.
        terms: weighted terms per group, each (...): ``consistency``, ``pose_prior``, and with
            `use_reprojection` ``reprojection`` (and ``shape_prior`` with `optimize_betas`).
        report: per-group `FitReport` (G items; G = 1 for a (V, D) input).
    """

    z: Tensor
    global_orient: Tensor
    body_pose: Tensor
    betas: Tensor
    keypoints_3d: Tensor
    camera_translation: Tensor | None
    loss: Tensor
    terms: Mapping[str, Tensor] = field(repr=False)
    report: FitReport = field(repr=False)


def _grouped(name: str, value: object, lead: tuple[int, ...], trailing: int | None) -> Tensor:
    """Check a (*lead, trailing) tensor (trailing None: any size) and return it (G·V flat)."""
    x = check_tensor(name, value)
    check_floating(name, x)
    ok = tuple(x.shape[: len(lead)]) == lead and x.ndim == len(lead) + 1
    if ok and trailing is not None:
        ok = x.shape[-1] == trailing
    if not ok:
        dims = ", ".join([*map(str, lead), "N" if trailing is None else str(trailing)])
        raise ValueError(f"`{name}` must have shape ({dims}), got {tuple(x.shape)}")
    check_finite(name, x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x)
    return x


def _on_device(name: str, x: Tensor, like: Tensor) -> Tensor:
    """`x` cast to `like`'s dtype; on another device than `like` (`init_z`) is an error."""
    check_same_device("init_z", like, name, x)
    return x.to(dtype=like.dtype)


def refine_multiview(
    *,
    decoder: Decoder,
    body_model: BodyModel,
    init_z: Tensor,
    init_betas: Tensor,
    keypoints_2d: Tensor | None = None,
    init_camera_translation: Tensor | None = None,
    focal_px: Tensor | float | None = None,
    image_size_px: Tensor | None = None,
    center_px: Tensor | None = None,
    options: MultiviewOptions | None = None,
) -> MultiviewResult:
    """Refine the per-view latents of V views of one person so their body poses agree.

    Args:
        decoder: ``z (N, D) -> (global_orient (N, 1, 3, 3), body_pose (N, J, 3, 3))``, called
            with N = G·V latents in group-major order (view v of group g is row g·V + v);
            item-separable.
        body_model: ``(global_orient, body_pose, betas (N, S)) -> keypoints (N, K, 3)``.
        init_z: (V, D) or (G, V, D) initial latents (ProHMR: 0).
        init_betas: (V, S) or (G, V, S) per-view regressed betas; their mean over the views is
            the shared betas.
        keypoints_2d: (..., V, K, 3) pixels + confidence; required with `use_reprojection`,
            ignored otherwise. NaN is an error.
        init_camera_translation: (..., V, 3) per-view translations; required with
            `use_reprojection`.
        focal_px: float, (..., V) or (..., V, 2); required with `use_reprojection`.
        image_size_px: (..., V, 2) (W, H); required with `use_reprojection`.
        center_px: (..., V, 2) principal points; default ``image_size_px / 2``.
        options: `MultiviewOptions`.

    Returns:
        `MultiviewResult`.

    Raises:
        TypeError, ValueError: bad types or shapes, NaN inputs, inputs missing for
            `use_reprojection`, bad outputs of the callables.
    """
    options = MultiviewOptions() if options is None else options
    check_callable("decoder", decoder)
    check_callable("body_model", body_model)
    z_in = check_tensor("init_z", init_z)
    check_floating("init_z", z_in)
    if z_in.ndim not in (2, 3):
        raise ValueError(f"`init_z` must have shape (V, D) or (G, V, D), got {tuple(z_in.shape)}")
    check_fit_dtype("init_z", z_in)
    if 0 in z_in.shape[:-1]:
        raise ValueError(
            f"`init_z` must hold at least one view (and group), got shape {tuple(z_in.shape)}"
        )
    grouped = z_in.ndim == 3
    z0 = z_in if grouped else z_in.unsqueeze(0)
    check_finite("init_z", z0)
    G, V, D = z0.shape
    N = G * V
    lead = (G, V) if grouped else (V,)
    like = z0
    betas_in = _on_device("init_betas", _grouped("init_betas", init_betas, lead, None), like)
    betas_views = betas_in.reshape(G, V, -1)
    shared_betas = betas_views.mean(dim=1)  # (G, S)

    kp = translation0 = focal = center = data_weight = None
    if options.use_reprojection:
        missing = [
            name
            for name, value in (
                ("keypoints_2d", keypoints_2d),
                ("init_camera_translation", init_camera_translation),
                ("focal_px", focal_px),
                ("image_size_px", image_size_px),
            )
            if value is None
        ]
        if missing:
            raise ValueError(f"use_reprojection=True needs {', '.join(f'`{m}`' for m in missing)}")
        kp_t = check_tensor("keypoints_2d", keypoints_2d)
        if (
            kp_t.ndim != len(lead) + 2
            or tuple(kp_t.shape[: len(lead)]) != lead
            or kp_t.shape[-1] != 3
        ):
            dims = ", ".join([*map(str, lead), "K", "3"])
            raise ValueError(f"`keypoints_2d` must have shape ({dims}), got {tuple(kp_t.shape)}")
        check_floating("keypoints_2d", kp_t)
        kp = finish_keypoints(
            "keypoints_2d",
            kp_t.reshape(N, *kp_t.shape[-2:]),
            like,
            "init_z",
            use_hips=options.use_hips,
        )
        translation0 = _grouped("init_camera_translation", init_camera_translation, lead, 3)
        translation0 = _on_device("init_camera_translation", translation0.reshape(G, V, 3), like)
        if isinstance(focal_px, Tensor) and focal_px.ndim >= len(lead):
            focal_flat: Tensor | float = focal_px.reshape(N, *focal_px.shape[len(lead) :])
        else:
            focal_flat = focal_px  # type: ignore[assignment]
        size_flat = _grouped("image_size_px", image_size_px, lead, 2).reshape(N, 2)
        center_flat = (
            None if center_px is None else _grouped("center_px", center_px, lead, 2).reshape(N, 2)
        )
        focal, center, size = camera_intrinsics(focal_flat, size_flat, center_flat, N, like)
        data_weight = image_size_weight(size, reference_px=options.reference_size_px)

    def decode(z: Tensor) -> tuple[Tensor, Tensor]:
        return check_pose_output("decoder", decoder(z.reshape(N, D)), N)

    def keypoints(orient: Tensor, pose: Tensor, betas: Tensor) -> Tensor:
        betas_flat = betas.unsqueeze(1).expand(G, V, betas.shape[-1]).reshape(N, -1)
        out = body_model(orient, pose, betas_flat)
        num_k = kp.shape[1] if kp is not None else (out.shape[1] if isinstance(out, Tensor) else 0)
        return check_keypoints_output("body_model", out, N, num_k)

    w_cons = options.consistency_weight**2
    w_pose = options.pose_prior_weight**2
    w_shape = options.shape_prior_weight**2

    def terms_of(p: Mapping[str, Tensor], *, with_body: bool) -> tuple[dict[str, Tensor], tuple]:
        orient, pose = decode(p["z"])
        pose_g = pose.reshape(G, V, *pose.shape[1:])
        terms = {
            "consistency": w_cons * rotation_consistency(pose_g).sum(dim=-1),
            "pose_prior": w_pose * squared_norm(p["z"]),
        }
        joints = None
        betas = p.get("betas", shared_betas)
        if options.use_reprojection or with_body:
            joints = keypoints(orient, pose, betas)
        if options.use_reprojection:
            if kp is None or focal is None or data_weight is None:  # pragma: no cover
                raise RuntimeError("internal error: reprojection inputs were not prepared")
            translation = p["camera_translation"].reshape(N, 3)
            projected = project_points(
                joints, focal_px=focal, center_px=center, translation=translation
            )
            per_view = reprojection_term(
                projected, kp, sigma_px=options.sigma_px, weight=data_weight
            )
            terms["reprojection"] = per_view.reshape(G, V).sum(dim=-1)
            if options.optimize_betas:
                terms["shape_prior"] = w_shape * squared_norm(betas)
        return terms, (orient, pose, joints, betas)

    def objective(p: dict[str, Tensor]) -> Tensor:
        terms, _ = terms_of(p, with_body=False)
        return sum(terms.values())  # type: ignore[return-value]

    initial = {"z": z0}
    if options.use_reprojection:
        if translation0 is None:  # pragma: no cover
            raise RuntimeError("internal error: camera translations were not prepared")
        initial["camera_translation"] = translation0
        if options.optimize_betas:
            initial["betas"] = shared_betas
    result = minimize(
        objective,
        initial,
        method=options.optimizer,
        stopping=options.stopping,
        lbfgs=options.lbfgs,
        adam=options.adam,
    )
    with torch.no_grad():
        terms, (orient, pose, joints, betas) = terms_of(result.params, with_body=True)

    def shape(x: Tensor, per_view: bool) -> Tensor:
        if per_view:
            x = x.reshape(G, V, *x.shape[1:])
        return x.detach() if grouped else x.detach()[0]

    z_out = result.params["z"]
    cam = result.params.get("camera_translation")
    return MultiviewResult(
        z=z_out if grouped else z_out[0],
        global_orient=shape(orient, True),
        body_pose=shape(pose, True),
        betas=betas.detach() if grouped else betas.detach()[0],
        keypoints_3d=shape(joints, True),
        camera_translation=None if cam is None else (cam if grouped else cam[0]),
        loss=result.loss if grouped else result.loss[0],
        terms={k: (v.detach() if grouped else v.detach()[0]) for k, v in terms.items()},
        report=result.report,
    )
