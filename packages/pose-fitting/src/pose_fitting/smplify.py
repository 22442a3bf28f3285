"""SMPLify-style fitting (Bogo et al. 2016): the classical baseline, initialised from a regression.

Optimises the SMPL pose directly (axis-angle or ProHMR's 6D), the betas and the camera
translation against 2D keypoints, with hand-made priors instead of a learned decoder:

    E_b = (224 / max(W_b, H_b))² · Σ_k conf_bk² · Σ_c ρ(π(J_bk) - u_bkc)        reprojection
        + 4.78² · GMM(θ_b)                 pose prior (max-mixture NLL, `GaussianMixturePrior`)
        + 15.2² · Σ_i exp(s_i θ_b,i)²      angle prior on elbows and knees (`terms.angle_prior`)
        + 5²    · ‖β_b‖²                   shape prior

preceded (``camera_stage=True``) by a camera stage that optimises only the global orientation and
the camera translation on the torso keypoints (`TORSO_KEYPOINT_IDX_44`) plus
``100² · (t_z - t_z,init)²``, which keeps the depth near the regression's.

The weights, σ = 100 px, Adam with learning rate 1e-2 and 100 iterations per stage are those of
SPIN's SMPLify re-implementation (Kolotouros et al. 2019), which works in 224-px crops; the data
term is scaled by ``(224 / max(W, H))²`` so the same weights hold in full-frame images (exactly 1
in a 224-px crop). The interpenetration term of the original SMPLify is not included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from pose_fitting._checks import (
    check_batched,
    check_callable,
    check_finite,
    check_fit_dtype,
    check_keypoints_output,
)
from pose_fitting._common import (
    batched_vector,
    camera_intrinsics,
    check_option_ranges,
    prepare_keypoints,
    skip_reasons_for_keypoints,
)
from pose_fitting.core import AdamOptions, FitReport, LBFGSOptions, StoppingRules, minimize
from pose_fitting.terms import (
    angle_prior,
    depth_deviation,
    image_size_weight,
    reprojection_term,
    squared_norm,
)
from pose_geometry import (
    axis_angle_to_rotmat,
    check_same_device,
    project_points,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_rot6d,
)

__all__ = ["TORSO_KEYPOINT_IDX_44", "SMPLifyOptions", "SMPLifyResult", "fit_smplify"]

#: Torso keypoints of the 44 layout used by the camera stage: OP RShoulder, OP LShoulder,
#: OP RHip, OP LHip, Right Hip, Left Hip, Right Shoulder, Left Shoulder.
TORSO_KEYPOINT_IDX_44: tuple[int, ...] = (2, 5, 9, 12, 27, 28, 33, 34)

BodyModel = Callable[[Tensor, Tensor, Tensor], Tensor]
PosePrior = Callable[[Tensor], Tensor]


def _fixed_iterations(n: int) -> StoppingRules:
    return StoppingRules(
        max_iterations=n, relative_tolerance=None, gradient_tolerance=None, stop_on_increase=False
    )


@dataclass(frozen=True)
class SMPLifyOptions:
    """Options of `fit_smplify`; defaults follow SPIN's SMPLify (see the module docstring).

    Attributes:
        pose_representation: ``"axis_angle"`` (SMPLify) or ``"rot6d"`` (ProHMR's 6D, continuous)
            for the optimised global orientation and body pose.
        pose_prior_weight: weight of the GMM prior, entering squared (4.78).
        angle_prior_weight: weight of the elbow/knee angle prior, entering squared (15.2).
        shape_prior_weight: weight of ‖β‖², entering squared (5).
        depth_weight: weight of ``(t_z - t_z,init)²`` in the camera stage, squared (100).
        sigma_px: Geman–McClure scale in pixels (100).
        reference_size_px: data term weighted by ``(reference / max(W, H))²`` (224).
        use_hips: as in `KeypointFittingOptions` (False zeroes the hip confidences).
        camera_stage: run the camera stage first.
        camera_stage_keypoint_idx: keypoints used by the camera stage.
        min_confident_keypoints: as in `KeypointFittingOptions`.
        confidence_threshold: as in `KeypointFittingOptions`.
        optimizer: ``"adam"`` (SPIN) or ``"lbfgs"``.
        stopping: per-stage stopping rules; default a fixed 100 iterations (no early stop).
        adam: Adam settings (learning rate 1e-2).
        lbfgs: L-BFGS settings when ``optimizer="lbfgs"``.
    """

    pose_representation: Literal["axis_angle", "rot6d"] = "axis_angle"
    pose_prior_weight: float = 4.78
    angle_prior_weight: float = 15.2
    shape_prior_weight: float = 5.0
    depth_weight: float = 100.0
    sigma_px: float = 100.0
    reference_size_px: float = 224.0
    use_hips: bool = False
    camera_stage: bool = True
    camera_stage_keypoint_idx: tuple[int, ...] = TORSO_KEYPOINT_IDX_44
    min_confident_keypoints: int = 6
    confidence_threshold: float = 0.1
    optimizer: Literal["lbfgs", "adam"] = "adam"
    stopping: StoppingRules = field(default_factory=lambda: _fixed_iterations(100))
    adam: AdamOptions = field(default_factory=lambda: AdamOptions(learning_rate=1e-2))
    lbfgs: LBFGSOptions = field(default_factory=LBFGSOptions)

    def __post_init__(self) -> None:
        if self.pose_representation not in ("axis_angle", "rot6d"):
            raise ValueError(
                f"unknown pose_representation {self.pose_representation!r}; "
                f"expected 'axis_angle' or 'rot6d'"
            )
        check_option_ranges(
            self,
            non_negative=(
                "pose_prior_weight",
                "angle_prior_weight",
                "shape_prior_weight",
                "depth_weight",
                "confidence_threshold",
            ),
            positive=("sigma_px", "reference_size_px"),
        )


@dataclass(frozen=True)
class SMPLifyResult:
    """Result of `fit_smplify` (every tensor detached).

    Attributes:
        global_orient: (B, 1, 3, 3) fitted root rotation.
        body_pose: (B, 23, 3, 3) fitted body-pose rotations.
        betas: (B, S) fitted betas.
        camera_translation: (B, 3) fitted camera translation in metres.
        keypoints_3d: (B, K, 3) body-model keypoints (body frame, metres).
        projected_keypoints_2d: (B, K, 2) projected keypoints in pixels.
        loss: (B,) final objective of the body stage.
        terms: weighted body-stage terms, each (B,): ``reprojection``, ``pose_prior``,
            ``angle_prior``, ``shape_prior``.
        report: per-item report of the body stage.
        camera_report: per-item report of the camera stage (None when it was not run).
    """

    global_orient: Tensor
    body_pose: Tensor
    betas: Tensor
    camera_translation: Tensor
    keypoints_3d: Tensor
    projected_keypoints_2d: Tensor
    loss: Tensor
    terms: Mapping[str, Tensor] = field(repr=False)
    report: FitReport = field(repr=False)
    camera_report: FitReport | None = field(default=None, repr=False)


def fit_smplify(
    *,
    body_model: BodyModel,
    pose_prior: PosePrior,
    keypoints_2d: Tensor,
    init_global_orient: Tensor,
    init_body_pose: Tensor,
    init_betas: Tensor,
    init_camera_translation: Tensor,
    focal_px: Tensor | float,
    image_size_px: Tensor,
    center_px: Tensor | None = None,
    options: SMPLifyOptions | None = None,
) -> SMPLifyResult:
    """SMPLify-style fitting of a batch, initialised from a regression (per item, independently).

    Args:
        body_model: ``(global_orient (B, 1, 3, 3), body_pose (B, 23, 3, 3), betas (B, S)) ->
            keypoints (B, K, 3)`` in metres.
        pose_prior: ``body pose axis-angle (B, 69) -> (B,)`` negative log-prior, e.g. a
            `GaussianMixturePrior` built from ``gmm_08.pkl``.
        keypoints_2d: (B, K, 3) targets in pixels with confidences >= 0; as in
            `fit_keypoints`, NaN/inf coordinates at confidence 0 are ignored, elsewhere an
            error.
        init_global_orient: (B, 1, 3, 3) initial root rotation (the regression's), B >= 1,
            float32 or float64: the fit runs in its dtype and on its device; the other
            tensors must be on that device and are cast to that dtype.
        init_body_pose: (B, 23, 3, 3) initial body pose (the regression's).
        init_betas: (B, S) initial betas.
        init_camera_translation: (B, 3) initial camera translation (`FittingCamera`).
        focal_px: float, (B,) or (B, 2) focal length(s) in pixels, finite and > 0.
        image_size_px: (B, 2) frame size (W, H) in pixels, > 0.
        center_px: (B, 2) principal point; default ``image_size_px / 2``.
        options: `SMPLifyOptions`.

    Returns:
        `SMPLifyResult`; items with too few confident keypoints return their initial values.

    Raises:
        TypeError, ValueError: as `fit_keypoints` (bad types, shapes, an empty batch, NaN
            inputs, a focal length <= 0, tensors on another device than
            `init_global_orient`, a dtype other than float32/float64, bad outputs of the
            callables).
    """
    options = SMPLifyOptions() if options is None else options
    check_callable("body_model", body_model)
    check_callable("pose_prior", pose_prior)
    like_name = "init_global_orient"
    orient0 = check_batched(like_name, init_global_orient, (1, 3, 3), None)
    check_fit_dtype(like_name, orient0)
    check_finite(like_name, orient0)
    B = orient0.shape[0]
    pose0 = check_batched("init_body_pose", init_body_pose, (23, 3, 3), B)
    check_same_device(like_name, orient0, "init_body_pose", pose0)
    check_finite("init_body_pose", pose0)
    pose0 = pose0.to(dtype=orient0.dtype)
    betas0 = batched_vector("init_betas", init_betas, B, None, orient0, like_name)
    t0 = batched_vector(
        "init_camera_translation", init_camera_translation, B, 3, orient0, like_name
    )
    kp = prepare_keypoints(keypoints_2d, B, orient0, use_hips=options.use_hips, like_name=like_name)
    focal, center, size = camera_intrinsics(
        focal_px, image_size_px, center_px, B, orient0, like_name
    )
    K = kp.shape[1]
    if any(not 0 <= i < K for i in options.camera_stage_keypoint_idx):
        raise ValueError(
            f"`camera_stage_keypoint_idx` {options.camera_stage_keypoint_idx} must index the "
            f"{K} keypoints of `keypoints_2d`"
        )
    data_weight = image_size_weight(size, reference_px=options.reference_size_px)
    torso_kp = torch.zeros_like(kp)
    torso_idx = list(options.camera_stage_keypoint_idx)
    torso_kp[:, torso_idx] = kp[:, torso_idx]

    if options.pose_representation == "axis_angle":
        encode: Callable[[Tensor], Tensor] = rotmat_to_axis_angle
        to_rotmat: Callable[[Tensor], Tensor] = axis_angle_to_rotmat
    else:
        encode, to_rotmat = rotmat_to_rot6d, rot6d_to_rotmat

    def body(orient: Tensor, pose_rotmat: Tensor, betas: Tensor) -> Tensor:
        out = body_model(orient, pose_rotmat, betas)
        return check_keypoints_output("body_model", out, B, K)

    def project(joints: Tensor, translation: Tensor) -> Tensor:
        return project_points(joints, focal_px=focal, center_px=center, translation=translation)

    skip = skip_reasons_for_keypoints(
        kp, min_confident=options.min_confident_keypoints, threshold=options.confidence_threshold
    )
    params0 = {
        "global_orient": encode(orient0),
        "body_pose": encode(pose0),
        "betas": betas0,
        "camera_translation": t0,
    }
    common = {
        "method": options.optimizer,
        "stopping": options.stopping,
        "lbfgs": options.lbfgs,
        "adam": options.adam,
        "skip_reasons": skip,
    }

    camera_report = None
    if options.camera_stage:
        pose_fixed = pose0

        def camera_objective(p: dict[str, Tensor]) -> Tensor:
            joints = body(to_rotmat(p["global_orient"]), pose_fixed, betas0)
            projected = project(joints, p["camera_translation"])
            data = reprojection_term(
                projected, torso_kp, sigma_px=options.sigma_px, weight=data_weight
            )
            return data + options.depth_weight**2 * depth_deviation(p["camera_translation"], t0)

        stage = minimize(
            camera_objective,
            {"global_orient": params0["global_orient"], "camera_translation": t0},
            **common,  # type: ignore[arg-type]
        )
        camera_report = stage.report
        params0 = {**params0, **stage.params}

    w_pose = options.pose_prior_weight**2
    w_angle = options.angle_prior_weight**2
    w_shape = options.shape_prior_weight**2

    def terms_of(p: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], tuple[Tensor, ...]]:
        orient = to_rotmat(p["global_orient"])
        pose_rotmat = to_rotmat(p["body_pose"])
        if options.pose_representation == "axis_angle":
            pose_aa = p["body_pose"]
        else:
            pose_aa = rotmat_to_axis_angle(pose_rotmat)
        joints = body(orient, pose_rotmat, p["betas"])
        projected = project(joints, p["camera_translation"])
        prior = pose_prior(pose_aa.reshape(B, -1))
        if not (isinstance(prior, Tensor) and tuple(prior.shape) == (B,)):
            shape = tuple(prior.shape) if isinstance(prior, Tensor) else type(prior).__name__
            raise ValueError(
                f"`pose_prior` must return per-item values of shape ({B},), got {shape}"
            )
        terms = {
            "reprojection": reprojection_term(
                projected, kp, sigma_px=options.sigma_px, weight=data_weight
            ),
            "pose_prior": w_pose * prior,
            "angle_prior": w_angle * angle_prior(pose_aa),
            "shape_prior": w_shape * squared_norm(p["betas"]),
        }
        return terms, (orient, pose_rotmat, joints, projected)

    def objective(p: dict[str, Tensor]) -> Tensor:
        terms, _ = terms_of(p)
        return sum(terms.values())  # type: ignore[return-value]

    result = minimize(objective, params0, **common)  # type: ignore[arg-type]
    with torch.no_grad():
        terms, (orient, pose_rotmat, joints, projected) = terms_of(result.params)
    return SMPLifyResult(
        global_orient=orient.detach(),
        body_pose=pose_rotmat.detach(),
        betas=result.params["betas"],
        camera_translation=result.params["camera_translation"],
        keypoints_3d=joints.detach(),
        projected_keypoints_2d=projected.detach(),
        loss=result.loss,
        terms={k: v.detach() for k, v in terms.items()},
        report=result.report,
        camera_report=camera_report,
    )
