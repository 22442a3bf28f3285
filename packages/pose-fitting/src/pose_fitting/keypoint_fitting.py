"""ProHMR keypoint fitting (paper Sec. 3.6): optimise z, betas and camera translation.

See docs/fitting.md#keypoint-fitting.

The pose comes from a decoder ``z -> (global_orient, body_pose)`` (in ProHMR: the image-conditioned
flow, pushed through in eval mode), so the only pose prior needed is ``‖z‖²`` (twice the flow's
negative log-density up to a constant, docs/model.md#the-mode). The objective per item b is

    E_b = (1000 / max(W_b, H_b))² · Σ_k conf_bk² · Σ_c ρ(π(J_bk) - u_bkc)      reprojection
        + 4² · ‖z_b‖²                                                          pose prior
        + 6² · ‖β_b‖²                                                          shape prior

with ρ the Geman–McClure penalty (σ = 100 px), π the pinhole projection (`project_points`) with
the optimised camera translation, the focal length and the principal point, and J the body
model's keypoints. Weights are stored un-squared in `KeypointFittingOptions` and enter squared,
as in the original.

Full-frame or crop mode only changes the inputs: `FittingCamera.full_frame` or
`FittingCamera.crop` builds the initial translation and the intrinsics from the regressed
weak-perspective camera (conversions from pose-geometry), and the keypoints are given in the
pixels of that frame (for crop keypoints in normalised units use
``pose_geometry.crop_normalized_to_pixels``; nothing is modified in place).
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
    check_pose_output,
)
from pose_fitting._common import (
    HIP_KEYPOINT_IDX_44,
    batched_vector,
    camera_intrinsics,
    check_option_ranges,
    prepare_keypoints,
    skip_reasons_for_keypoints,
)
from pose_fitting.core import AdamOptions, FitReport, LBFGSOptions, StoppingRules, minimize
from pose_fitting.terms import image_size_weight, reprojection_term, squared_norm
from pose_geometry import (
    check_floating,
    check_trailing_shape,
    crop_camera_to_full_frame_translation,
    project_points,
    weak_perspective_to_translation,
)

__all__ = [
    "HIP_KEYPOINT_IDX_44",
    "FittingCamera",
    "KeypointFittingOptions",
    "KeypointFittingResult",
    "fit_keypoints",
]

Decoder = Callable[[Tensor], tuple[Tensor, Tensor]]
BodyModel = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class FittingCamera:
    """Initial camera translation and intrinsics for one batch of images.

    Attributes:
        translation: (B, 3) camera translation in metres.
        focal_px: (B, 2) focal lengths (fx, fy) in pixels.
        center_px: (B, 2) principal point in pixels.
        image_size_px: (B, 2) image size (W, H) in pixels (sets the data-term weight).
    """

    translation: Tensor
    focal_px: Tensor
    center_px: Tensor
    image_size_px: Tensor

    @classmethod
    def full_frame(
        cls,
        camera: Tensor,
        *,
        box_center_px: Tensor,
        box_size_px: Tensor | float,
        image_size_px: Tensor,
        focal_length_px: Tensor | float = 5000.0,
    ) -> FittingCamera:
        """ProHMR's full-frame mode: fit in the original image (docs/fitting.md#keypoint-fitting).

        Translation from `pose_geometry.crop_camera_to_full_frame_translation`; principal point
        at the image centre; focal `focal_length_px` in image pixels.

        Args:
            camera: (B, 3) regressed weak-perspective crop camera (s, tx, ty).
            box_center_px: (B, 2) crop box centre in image pixels.
            box_size_px: (B,) or float, crop box side in image pixels.
            image_size_px: (B, 2) image size (W, H) in pixels.
            focal_length_px: focal length in image pixels, a float or (B,) per image (ProHMR:
                5000).
        """
        check_trailing_shape("camera", camera, 3)
        check_floating("camera", camera)
        size = image_size_px.to(camera)
        focal_length = (
            focal_length_px.to(camera) if isinstance(focal_length_px, Tensor) else focal_length_px
        )
        translation = crop_camera_to_full_frame_translation(
            camera,
            box_center_px=box_center_px.to(camera),
            box_size_px=box_size_px.to(camera) if isinstance(box_size_px, Tensor) else box_size_px,
            image_size_px=size,
            focal_length_px=focal_length,
        )
        B = camera.shape[0]
        if isinstance(focal_length, Tensor):
            focal = focal_length.reshape(-1, 1).expand(B, 2).clone()
        else:
            kw = {"dtype": camera.dtype, "device": camera.device}
            focal = torch.full((B, 2), float(focal_length), **kw)
        return cls(
            translation=translation, focal_px=focal, center_px=0.5 * size, image_size_px=size
        )

    @classmethod
    def crop(
        cls, camera: Tensor, *, crop_size_px: float = 224.0, focal_length_px: float = 5000.0
    ) -> FittingCamera:
        """ProHMR's crop mode (the demo's default): fit in the square crop, in crop pixels.

        Translation from `pose_geometry.weak_perspective_to_translation` (``pred_cam_t``);
        principal point at the crop centre; image size = the crop.

        Args:
            camera: (B, 3) regressed weak-perspective crop camera (s, tx, ty).
            crop_size_px: crop side in pixels (ProHMR: 224).
            focal_length_px: focal length in crop pixels (ProHMR: 5000).
        """
        check_trailing_shape("camera", camera, 3)
        check_floating("camera", camera)
        translation = weak_perspective_to_translation(
            camera, focal_length_px=focal_length_px, crop_size_px=crop_size_px
        )
        B = camera.shape[0]
        kw = {"dtype": camera.dtype, "device": camera.device}
        focal = torch.full((B, 2), float(focal_length_px), **kw)
        size = torch.full((B, 2), float(crop_size_px), **kw)
        return cls(
            translation=translation, focal_px=focal, center_px=0.5 * size, image_size_px=size
        )


@dataclass(frozen=True)
class KeypointFittingOptions:
    """Options of `fit_keypoints`; defaults are ProHMR's eval settings.

    Attributes:
        pose_prior_weight: weight of ‖z‖², entering squared (4 → 16).
        shape_prior_weight: weight of ‖β‖², entering squared (6 → 36).
        sigma_px: Geman–McClure scale in pixels (100).
        reference_size_px: the data term is weighted by ``(reference / max(W, H))²`` (1000).
        use_hips: keep the hip keypoints; False zeroes the confidences of
            `HIP_KEYPOINT_IDX_44` (ProHMR's default; the eval takes it from the dataset).
        min_confident_keypoints: items with fewer keypoints of confidence above
            `confidence_threshold` (counted after the hip rule) are not fitted: they return the
            initial values with reason ``"too_few_confident_keypoints: ..."``. Not in the
            original (which would fit them against the priors alone); 0 disables it.
        confidence_threshold: confidence above which a keypoint counts for the rule above.
            Keypoints below it still enter the data term with weight conf².
        optimizer: ``"lbfgs"`` (the original) or ``"adam"``.
        stopping: per-item stopping rules (max_iterations 30 as the eval script; the demo
            uses 10).
        lbfgs: L-BFGS settings (lr 1, 20 inner iterations, history 100, strong Wolfe).
        adam: Adam settings, used when ``optimizer="adam"``.
        compile: evaluate the fitting objective (decoder, body model, projection and priors,
            value and gradient) through ``torch.compile`` (`minimize`'s ``compile``), graph
            breaks allowed; on CPU a C++ compiler is needed. The first evaluation of each fit
            is eager, so Python-side checks in the callables run at least once per fit. Same
            values up to float rounding; not in the original.
    """

    pose_prior_weight: float = 4.0
    shape_prior_weight: float = 6.0
    sigma_px: float = 100.0
    reference_size_px: float = 1000.0
    use_hips: bool = False
    min_confident_keypoints: int = 6
    confidence_threshold: float = 0.1
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    stopping: StoppingRules = field(default_factory=StoppingRules)
    lbfgs: LBFGSOptions = field(default_factory=LBFGSOptions)
    adam: AdamOptions = field(default_factory=AdamOptions)
    compile: bool = False

    def __post_init__(self) -> None:
        check_option_ranges(
            self,
            non_negative=("pose_prior_weight", "shape_prior_weight", "confidence_threshold"),
            positive=("sigma_px", "reference_size_px"),
        )


@dataclass(frozen=True)
class KeypointFittingResult:
    """Result of `fit_keypoints` (every tensor detached, on the device of the inputs).

    Attributes:
        z: (B, D) optimised latents.
        betas: (B, S) optimised shape coefficients.
        camera_translation: (B, 3) optimised camera translation in metres.
        global_orient: (B, 1, 3, 3) decoder output at `z`.
        body_pose: (B, J, 3, 3) decoder output at `z`.
        keypoints_3d: (B, K, 3) body-model keypoints (body frame, metres, no camera).
        projected_keypoints_2d: (B, K, 2) keypoints projected with the fitted camera, pixels.
        loss: (B,) total objective.
        terms: weighted terms, each (B,): ``reprojection``, ``pose_prior``, ``shape_prior``.
        report: per-item `FitReport` (skipped items: ``optimized`` False and the reason).
    """

    z: Tensor
    betas: Tensor
    camera_translation: Tensor
    global_orient: Tensor
    body_pose: Tensor
    keypoints_3d: Tensor
    projected_keypoints_2d: Tensor
    loss: Tensor
    terms: Mapping[str, Tensor] = field(repr=False)
    report: FitReport = field(repr=False)


def frame_terms(
    decoder: Decoder,
    body_model: BodyModel,
    z: Tensor,
    betas: Tensor,
    translation: Tensor,
    *,
    keypoints: Tensor,
    focal: Tensor,
    center: Tensor,
    data_weight: Tensor,
    options: KeypointFittingOptions,
) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor, Tensor, Tensor]]:
    """ProHMR's fitting objective of B frames, term by term: the one definition of it.

    `fit_keypoints` minimises the sum of these terms per item; `fit_keypoints_sequence` sums
    them over a sequence's frames and adds its smoothness term.

    Args:
        decoder, body_model: as for `fit_keypoints`.
        z: (B, D) latents. betas: (B, S). translation: (B, 3) camera translations, metres.
        keypoints: (B, K, 3) prepared targets (pixels, confidence).
        focal, center: (B, 2) intrinsics in pixels. data_weight: (B,) image-size weights.
        options: the weights and robustifier of the terms.

    Returns:
        ``{"reprojection", "pose_prior", "shape_prior"}`` each (B,), and the decoded
        ``(global_orient, body_pose, keypoints_3d, projected_keypoints_2d)``.
    """
    num = z.shape[0]
    global_orient, body_pose = check_pose_output("decoder", decoder(z), num)
    joints = check_keypoints_output(
        "body_model", body_model(global_orient, body_pose, betas), num, keypoints.shape[1]
    )
    projected = project_points(joints, focal_px=focal, center_px=center, translation=translation)
    terms = {
        "reprojection": reprojection_term(
            projected, keypoints, sigma_px=options.sigma_px, weight=data_weight
        ),
        "pose_prior": options.pose_prior_weight**2 * squared_norm(z),
        "shape_prior": options.shape_prior_weight**2 * squared_norm(betas),
    }
    return terms, (global_orient, body_pose, joints, projected)


def fit_keypoints(
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
    options: KeypointFittingOptions | None = None,
) -> KeypointFittingResult:
    """Fit a batch of images to 2D keypoints the ProHMR way (per item, independently).

    Args:
        decoder: ``z (B, D) -> (global_orient (B, 1, 3, 3), body_pose (B, J, 3, 3))``,
            item-separable (a flow in eval mode, conditioned per item). ProHMR: the
            image-conditioned flow of the pose head.
        body_model: ``(global_orient, body_pose, betas (B, S)) -> keypoints (B, K, 3)``
            in metres, body frame (ProHMR: SMPL's 44 keypoints).
        keypoints_2d: (B, K, 3) targets: ``(u, v)`` in pixels of the fitting frame and a
            confidence >= 0 (OpenPose or ground truth; 0 = missing). A keypoint with
            confidence 0 contributes nothing even if its coordinates are NaN or inf (they are
            replaced by 0); NaN/inf at a confidence > 0, or in a confidence, is an error.
        init_z: (B, D) initial latents (ProHMR: 0, the mode), B >= 1, float32 or float64: the
            fit runs in its dtype and on its device. The other tensors must be on the same
            device; they are cast to its dtype (float32 keypoints with a float64 `init_z`
            give a float64 fit).
        init_betas: (B, S) initial betas (ProHMR: the regressed betas).
        init_camera_translation: (B, 3) initial translation (`FittingCamera.translation`).
        focal_px: float, (B,) or (B, 2) focal length(s) in pixels, finite and > 0 (ProHMR:
            5000).
        image_size_px: (B, 2) frame size (W, H) in pixels, > 0: (W, H) of the image in
            full-frame mode, (224, 224) in crop mode.
        center_px: (B, 2) principal point; default ``image_size_px / 2`` (as ProHMR).
        options: `KeypointFittingOptions`; default ProHMR's.

    Returns:
        `KeypointFittingResult`. Items with too few confident keypoints come back with their
        initial values (the regression) and ``report.optimized[b] = False``.

    Raises:
        TypeError: for a non-tensor input or a non-callable decoder/body model, callables
            returning the wrong types, or an `init_z` that is not float32/float64.
        ValueError: for wrong shapes, an empty batch (B = 0), NaN/inf in an input (the message
            names it; see `keypoints_2d` for the keypoints), a focal length or image size
            that is not finite and > 0, a tensor on another device than `init_z` (the message
            names both devices), or callables returning wrong shapes.
    """
    options = KeypointFittingOptions() if options is None else options
    check_callable("decoder", decoder)
    check_callable("body_model", body_model)
    z0 = check_batched("init_z", init_z, (None,), None)
    check_fit_dtype("init_z", z0)
    check_finite("init_z", z0)
    B = z0.shape[0]
    betas0 = batched_vector("init_betas", init_betas, B, None, z0)
    t0 = batched_vector("init_camera_translation", init_camera_translation, B, 3, z0)
    kp = prepare_keypoints(keypoints_2d, B, z0, use_hips=options.use_hips)
    focal, center, size = camera_intrinsics(focal_px, image_size_px, center_px, B, z0)
    data_weight = image_size_weight(size, reference_px=options.reference_size_px)

    def terms_of(params: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], tuple[Tensor, ...]]:
        return frame_terms(
            decoder,
            body_model,
            params["z"],
            params["betas"],
            params["camera_translation"],
            keypoints=kp,
            focal=focal,
            center=center,
            data_weight=data_weight,
            options=options,
        )

    def objective(params: dict[str, Tensor]) -> Tensor:
        terms, _ = terms_of(params)
        return terms["reprojection"] + terms["pose_prior"] + terms["shape_prior"]

    skip = skip_reasons_for_keypoints(
        kp, min_confident=options.min_confident_keypoints, threshold=options.confidence_threshold
    )
    result = minimize(
        objective,
        {"z": z0, "betas": betas0, "camera_translation": t0},
        method=options.optimizer,
        stopping=options.stopping,
        lbfgs=options.lbfgs,
        adam=options.adam,
        skip_reasons=skip,
        compile=options.compile,
    )
    with torch.no_grad():
        terms, (global_orient, body_pose, joints, projected) = terms_of(result.params)
    return KeypointFittingResult(
        z=result.params["z"],
        betas=result.params["betas"],
        camera_translation=result.params["camera_translation"],
        global_orient=global_orient.detach(),
        body_pose=body_pose.detach(),
        keypoints_3d=joints.detach(),
        projected_keypoints_2d=projected.detach(),
        loss=result.loss,
        terms={k: v.detach() for k, v in terms.items()},
        report=result.report,
    )
