"""Private helpers shared by the keypoint, SMPLify and multiview fittings."""

from __future__ import annotations

import torch
from torch import Tensor

from pose_fitting._checks import check_batched, check_finite
from pose_geometry import check_positive, check_same_device

#: Keypoints of the 44 layout whose confidence is zeroed when ``use_hips=False`` (ProHMR):
#: OP MidHip, OP RHip, OP LHip, Right Hip, Left Hip, Pelvis (MPII).
HIP_KEYPOINT_IDX_44: tuple[int, ...] = (8, 9, 12, 27, 28, 39)

#: Prefix of the report reason of items skipped for lack of confident keypoints.
TOO_FEW_KEYPOINTS = "too_few_confident_keypoints"


def prepare_keypoints(
    keypoints_2d: object,
    batch: int,
    like: Tensor,
    *,
    use_hips: bool,
    name: str = "keypoints_2d",
    like_name: str = "init_z",
) -> Tensor:
    """Validate (B, K, 3) keypoints, cast to `like`, zero hip confidences if asked.

    See `finish_keypoints` for the rules on confidences and non-finite coordinates.
    """
    kp = check_batched(name, keypoints_2d, (None, 3), batch)
    return finish_keypoints(name, kp, like, like_name, use_hips=use_hips)


def finish_keypoints(
    name: str, kp: Tensor, like: Tensor, like_name: str, *, use_hips: bool
) -> Tensor:
    """(N, K, 3) keypoints on `like`'s device -> cast, hips zeroed, missing coordinates cleaned.

    Confidences must be finite and >= 0. A keypoint with confidence 0 (given, or zeroed by the
    hip rule) contributes nothing, whatever its coordinates: NaN or inf there is replaced by 0
    (the documented recovery for detectors that mark missing keypoints with NaN). NaN or inf
    coordinates at a confidence > 0 are an error naming the items and keypoints.
    """
    check_same_device(like_name, like, name, kp)
    kp = kp.to(dtype=like.dtype)
    conf = kp[..., 2]
    bad_conf = ~(torch.isfinite(conf) & (conf >= 0))
    if bool(bad_conf.any()):
        item, k = torch.nonzero(bad_conf)[0].tolist()
        raise ValueError(
            f"`{name}[..., 2]` (confidence) must be finite and >= 0, got "
            f"{float(conf[item, k]):g} at item {item}, keypoint {k}"
        )
    if not use_hips:
        K = kp.shape[1]
        if K <= max(HIP_KEYPOINT_IDX_44):
            raise ValueError(
                f"`{name}` has {K} keypoints; use_hips=False zeroes the hips of the 44-keypoint "
                f"layout {HIP_KEYPOINT_IDX_44}, so it needs 44 keypoints (or pass use_hips=True)"
            )
        kp = kp.clone()
        kp[:, list(HIP_KEYPOINT_IDX_44), 2] = 0.0
    missing = ~torch.isfinite(kp[..., :2]).all(dim=-1)
    if bool(missing.any()):
        used = missing & (kp[..., 2] > 0)
        if bool(used.any()):
            items = torch.nonzero(used.any(dim=1)).flatten().tolist()
            item, k = torch.nonzero(used)[0].tolist()
            shown = ", ".join(map(str, items[:8])) + (", ..." if len(items) > 8 else "")
            raise ValueError(
                f"`{name}` must have finite coordinates where the confidence is > 0, got "
                f"{kp[item, k, :2].tolist()} at item {item}, keypoint {k} (batch items "
                f"[{shown}]); give missing keypoints confidence 0 or drop the items"
            )
        coords = torch.where(missing[..., None], kp.new_zeros(()), kp[..., :2])
        kp = torch.cat([coords, kp[..., 2:]], dim=-1)
    return kp


def skip_reasons_for_keypoints(
    keypoints_2d: Tensor, *, min_confident: int, threshold: float
) -> list[str | None]:
    """Per item: None, or the reason it has too few keypoints with confidence > `threshold`."""
    counts = (keypoints_2d[..., 2] > threshold).sum(dim=-1).tolist()
    return [
        None
        if n >= min_confident
        else f"{TOO_FEW_KEYPOINTS}: {n} with confidence > {threshold:g}, need {min_confident}"
        for n in counts
    ]


def batched_vector(
    name: str,
    value: object,
    batch: int,
    size: int | None,
    like: Tensor,
    like_name: str = "init_z",
) -> Tensor:
    """A finite (B, size) tensor (None: any size) on `like`'s device, cast to its dtype."""
    x = check_batched(name, value, (size,), batch)
    check_same_device(like_name, like, name, x)
    check_finite(name, x)
    return x.to(dtype=like.dtype)


def focal_tensor(focal_px: object, batch: int, like: Tensor, like_name: str = "init_z") -> Tensor:
    """A focal length as (B, 2): from a float, a (B,) tensor (fx = fy) or a (B, 2) tensor.

    Every value must be finite and > 0 (a focal length <= 0 mirrors or collapses the
    projection, and the fit would converge to a meaningless camera).
    """
    if isinstance(focal_px, bool) or not isinstance(focal_px, (int, float, Tensor)):
        raise TypeError(
            f"`focal_px` must be a float or a tensor of shape (B,) or (B, 2), "
            f"got {type(focal_px).__name__}"
        )
    if isinstance(focal_px, (int, float)):
        check_positive("focal_px", float(focal_px))
        return torch.full((batch, 2), float(focal_px), dtype=like.dtype, device=like.device)
    check_same_device(like_name, like, "focal_px", focal_px)
    f = focal_px.to(dtype=like.dtype)
    if f.ndim == 0:
        f = f.expand(batch, 2)
    elif tuple(f.shape) == (batch,):
        f = f.unsqueeze(-1).expand(batch, 2)
    elif tuple(f.shape) != (batch, 2):
        raise ValueError(
            f"`focal_px` must be a float or have shape (B,) or (B, 2) with B = {batch}, "
            f"got {tuple(focal_px.shape)}"
        )
    check_positive("focal_px", f)
    return f.contiguous()


def camera_intrinsics(
    focal_px: object,
    image_size_px: object,
    center_px: object | None,
    batch: int,
    like: Tensor,
    like_name: str = "init_z",
) -> tuple[Tensor, Tensor, Tensor]:
    """(focal (B, 2), center (B, 2), image size (B, 2)); the centre defaults to size / 2."""
    focal = focal_tensor(focal_px, batch, like, like_name)
    size = batched_vector("image_size_px", image_size_px, batch, 2, like, like_name)
    check_positive("image_size_px", size)
    if center_px is None:
        center = 0.5 * size
    else:
        center = batched_vector("center_px", center_px, batch, 2, like, like_name)
    return focal, center, size


def check_option_ranges(
    options: object, *, non_negative: tuple[str, ...], positive: tuple[str, ...]
) -> None:
    """Raise ValueError naming the first option outside its range (options dataclasses)."""
    for name in non_negative:
        value = getattr(options, name)
        if not value >= 0:
            raise ValueError(f"`{name}` must be >= 0, got {value!r}")
    for name in positive:
        value = getattr(options, name)
        if not value > 0:
            raise ValueError(f"`{name}` must be > 0, got {value!r}")
    optimizer = getattr(options, "optimizer", None)
    if optimizer is not None and optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"unknown optimizer {optimizer!r}; expected 'lbfgs' or 'adam'")
    minimum = getattr(options, "min_confident_keypoints", None)
    if minimum is not None and minimum < 0:
        raise ValueError(f"`min_confident_keypoints` must be >= 0, got {minimum!r}")
