"""Keypoint layouts: names, flip permutations, index maps between layouts, evaluation subsets.

The 44-keypoint layout
    ProHMR (like SPIN) describes a body with 44 keypoints: indices 0..24 are the 25 OpenPose
    BODY_25 keypoints, in OpenPose order ("OP Nose", "OP Neck", ..., "OP RHeel"), and indices
    25..43 are 19 "extra" keypoints ("extra k" = index 25 + k) that a linear regressor computes
    from the body-model vertices and that the 3D datasets annotate: the 14 LSP joints (ankles,
    knees, hips, wrists, elbows, shoulders, neck, top of head), the MPII pelvis and thorax and
    the Human3.6M spine, jaw and head. The pelvis is index 39 (extra 14); 3D keypoints are
    root-centred on it. Keypoint arrays carry a trailing channel dimension C: (x, y, confidence)
    in 2D, (x, y, z, confidence) in 3D; a confidence of 0 marks a missing keypoint.

SMPL joints
    The 24 joints of the SMPL kinematic tree, numbered as in SMPL (0 pelvis, 1 left hip, ...);
    the body model returns them first, followed by joints picked from vertices (nose, eyes, ears,
    toes, heels, fingertips), 45 in all, from which `SMPLX_JOINTS_TO_BODY25` selects BODY_25.

Other layouts
    COCO-17 keypoints, MPII-16 joints and Human3.6M's 32 motion-capture joints are placed into the
    44 layout with `remap_keypoints` and the `*_TO_44` maps below; keypoints a layout lacks stay
    zero (confidence 0).

Sides are the person's own: "Left Hip" is the subject's left hip, which appears on the right of
an image of a person facing the camera. Mirroring an image (x -> -x) swaps left and right, hence
`flip_keypoints` both negates x and applies `FLIP_PERMUTATION_44`.

Every constant is an immutable tuple. Permutations read "output i takes input perm[i]".
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import Tensor

from pose_geometry.checks import check_floating, check_tensor

__all__ = [
    "BODY25_TO_44",
    "COCO17_NAMES",
    "COCO17_TO_44",
    "FLIP_PERMUTATION_44",
    "H36M17_IDX_44",
    "H36M32_TO_44",
    "KEYPOINT_NAMES_44",
    "LIFTING_2D_IDX_44",
    "LIFTING_3D_IDX_44",
    "LSP14_IDX_44",
    "MPII16_NAMES",
    "MPII16_TO_44",
    "MPI_INF17_IDX_44",
    "NUM_KEYPOINTS_44",
    "OPENPOSE_BODY25_NAMES",
    "PELVIS_IDX_44",
    "SMPLX_JOINTS_TO_BODY25",
    "SMPL_FLIP_PERMUTATION",
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "flip_keypoints",
    "remap_keypoints",
]

# ---------------------------------------------------------------------------------------------
# The 44-keypoint layout
# ---------------------------------------------------------------------------------------------

#: Number of keypoints in the ProHMR/SPIN layout: 25 OpenPose BODY_25 + 19 extra.
NUM_KEYPOINTS_44: int = 44

#: Offset of the extra keypoints in the 44 layout: "extra k" is index _EXTRA_OFFSET + k.
_EXTRA_OFFSET: int = 25

#: Names of the 44 keypoints, in layout order. 0..24: OpenPose BODY_25 ("OP" prefix, "L"/"R" =
#: the subject's left/right); 25..43: extra 0..18, with the dataset that defines the joint in
#: parentheses where several datasets disagree on its position.
KEYPOINT_NAMES_44: tuple[str, ...] = (
    "OP Nose",  # 0
    "OP Neck",  # 1
    "OP RShoulder",  # 2
    "OP RElbow",  # 3
    "OP RWrist",  # 4
    "OP LShoulder",  # 5
    "OP LElbow",  # 6
    "OP LWrist",  # 7
    "OP MidHip",  # 8
    "OP RHip",  # 9
    "OP RKnee",  # 10
    "OP RAnkle",  # 11
    "OP LHip",  # 12
    "OP LKnee",  # 13
    "OP LAnkle",  # 14
    "OP REye",  # 15
    "OP LEye",  # 16
    "OP REar",  # 17
    "OP LEar",  # 18
    "OP LBigToe",  # 19
    "OP LSmallToe",  # 20
    "OP LHeel",  # 21
    "OP RBigToe",  # 22
    "OP RSmallToe",  # 23
    "OP RHeel",  # 24
    "Right Ankle",  # 25, extra 0
    "Right Knee",  # 26, extra 1
    "Right Hip",  # 27, extra 2
    "Left Hip",  # 28, extra 3
    "Left Knee",  # 29, extra 4
    "Left Ankle",  # 30, extra 5
    "Right Wrist",  # 31, extra 6
    "Right Elbow",  # 32, extra 7
    "Right Shoulder",  # 33, extra 8
    "Left Shoulder",  # 34, extra 9
    "Left Elbow",  # 35, extra 10
    "Left Wrist",  # 36, extra 11
    "Neck (LSP)",  # 37, extra 12
    "Top of Head (LSP)",  # 38, extra 13
    "Pelvis (MPII)",  # 39, extra 14
    "Thorax (MPII)",  # 40, extra 15
    "Spine (H36M)",  # 41, extra 16
    "Jaw (H36M)",  # 42, extra 17
    "Head (H36M)",  # 43, extra 18
)

#: Index of the pelvis (extra 14, "Pelvis (MPII)") in the 44 layout: the root of 3D keypoints.
PELVIS_IDX_44: int = 39

#: Horizontal-flip permutation of the 44 layout: after mirroring x, output keypoint i takes input
#: keypoint FLIP_PERMUTATION_44[i] (left and right swapped, centre keypoints fixed). An involution.
FLIP_PERMUTATION_44: tuple[int, ...] = (
    # OpenPose part: Nose, Neck, arms, MidHip, legs, eyes, ears, feet
    0, 1, 5, 6, 7, 2, 3, 4, 8, 12, 13, 14, 9, 10, 11, 16, 15, 18, 17, 22, 23, 24, 19, 20, 21,
    # extra part: legs, arms, then the centre joints extra 12..18 unchanged
    30, 29, 28, 27, 26, 25, 36, 35, 34, 33, 32, 31, 37, 38, 39, 40, 41, 42, 43,
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# SMPL joints
# ---------------------------------------------------------------------------------------------

#: Names of the 24 SMPL joints in SMPL numbering (joint 0 = pelvis = root / global orientation).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",  # 0
    "left_hip",  # 1
    "right_hip",  # 2
    "spine1",  # 3
    "left_knee",  # 4
    "right_knee",  # 5
    "spine2",  # 6
    "left_ankle",  # 7
    "right_ankle",  # 8
    "spine3",  # 9
    "left_foot",  # 10
    "right_foot",  # 11
    "neck",  # 12
    "left_collar",  # 13
    "right_collar",  # 14
    "head",  # 15
    "left_shoulder",  # 16
    "right_shoulder",  # 17
    "left_elbow",  # 18
    "right_elbow",  # 19
    "left_wrist",  # 20
    "right_wrist",  # 21
    "left_hand",  # 22
    "right_hand",  # 23
)

#: Parent of each SMPL joint in the kinematic tree (-1 for the root, joint 0). Every parent index
#: is smaller than its child's, so a forward pass in index order visits parents first.
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

#: Horizontal-flip permutation of the 24 SMPL joints: joint j of the flipped pose takes the
#: rotation of source joint SMPL_FLIP_PERMUTATION[j] (left/right pairs swapped; root and spine,
#: neck and head joints 0, 3, 6, 9, 12, 15 fixed). For axis-angle rotations, the y and z
#: components of every joint (root included) must also be negated. An involution.
SMPL_FLIP_PERMUTATION: tuple[int, ...] = (
    0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22,
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# OpenPose BODY_25
# ---------------------------------------------------------------------------------------------

#: The 25 OpenPose BODY_25 keypoint names in OpenPose order ("L"/"R" = the subject's side).
OPENPOSE_BODY25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip

#: Per-source map from BODY_25 into the 44 layout: BODY_25 keypoint i is 44-index i.
BODY25_TO_44: tuple[int, ...] = tuple(range(25))

#: Indices into the 45 joints returned by the SMPL body model (24 SMPL joints, then the vertex
#: joints 24 nose, 25 right eye, 26 left eye, 27 right ear, 28 left ear, 29 left big toe,
#: 30 left small toe, 31 left heel, 32 right big toe, 33 right small toe, 34 right heel,
#: 35..44 fingertips) giving BODY_25 order: BODY_25 keypoint i = joint SMPLX_JOINTS_TO_BODY25[i].
#: OpenPose's MidHip is approximated by the SMPL pelvis (joint 0).
SMPLX_JOINTS_TO_BODY25: tuple[int, ...] = (
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# COCO-17 and MPII-16
# ---------------------------------------------------------------------------------------------

#: The 17 COCO person keypoint names in COCO order.
COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

#: Per-source map from COCO-17 into the 44 layout: COCO keypoint i goes to 44-index
#: COCO17_TO_44[i], the OpenPose slot of the same meaning (COCO has no neck, mid-hip or feet).
COCO17_TO_44: tuple[int, ...] = (
    0,  # nose -> OP Nose
    16,  # left_eye -> OP LEye
    15,  # right_eye -> OP REye
    18,  # left_ear -> OP LEar
    17,  # right_ear -> OP REar
    5,  # left_shoulder -> OP LShoulder
    2,  # right_shoulder -> OP RShoulder
    6,  # left_elbow -> OP LElbow
    3,  # right_elbow -> OP RElbow
    7,  # left_wrist -> OP LWrist
    4,  # right_wrist -> OP RWrist
    12,  # left_hip -> OP LHip
    9,  # right_hip -> OP RHip
    13,  # left_knee -> OP LKnee
    10,  # right_knee -> OP RKnee
    14,  # left_ankle -> OP LAnkle
    11,  # right_ankle -> OP RAnkle
)

#: The 16 MPII human-pose joint names in MPII order (ids 0..15).
MPII16_NAMES: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip

#: Per-source map from MPII-16 into the 44 layout (extra part: 44-index = 25 + extra index):
#: MPII joint i goes to 44-index MPII16_TO_44[i].
MPII16_TO_44: tuple[int, ...] = (
    _EXTRA_OFFSET + 0,  # right_ankle -> Right Ankle
    _EXTRA_OFFSET + 1,  # right_knee -> Right Knee
    _EXTRA_OFFSET + 2,  # right_hip -> Right Hip
    _EXTRA_OFFSET + 3,  # left_hip -> Left Hip
    _EXTRA_OFFSET + 4,  # left_knee -> Left Knee
    _EXTRA_OFFSET + 5,  # left_ankle -> Left Ankle
    _EXTRA_OFFSET + 14,  # pelvis -> Pelvis (MPII)
    _EXTRA_OFFSET + 15,  # thorax -> Thorax (MPII)
    _EXTRA_OFFSET + 12,  # upper_neck -> Neck (LSP)
    _EXTRA_OFFSET + 13,  # head_top -> Top of Head (LSP)
    _EXTRA_OFFSET + 6,  # right_wrist -> Right Wrist
    _EXTRA_OFFSET + 7,  # right_elbow -> Right Elbow
    _EXTRA_OFFSET + 8,  # right_shoulder -> Right Shoulder
    _EXTRA_OFFSET + 9,  # left_shoulder -> Left Shoulder
    _EXTRA_OFFSET + 10,  # left_elbow -> Left Elbow
    _EXTRA_OFFSET + 11,  # left_wrist -> Left Wrist
)

# ---------------------------------------------------------------------------------------------
# Human3.6M
# ---------------------------------------------------------------------------------------------

#: (source, target) pairs placing 17 of Human3.6M's 32 motion-capture joints into the 44 layout
#: (ProHMR's preprocessing map; target = 25 + extra index). The pelvis pair comes first: H36M 3D
#: keypoints are root-centred on it. Extra 13 (top of head) and 15 (thorax) get no H36M joint.
H36M32_TO_44: tuple[tuple[int, int], ...] = (
    (11, _EXTRA_OFFSET + 14),  # pelvis
    (6, _EXTRA_OFFSET + 3),  # left hip
    (7, _EXTRA_OFFSET + 4),  # left knee
    (8, _EXTRA_OFFSET + 5),  # left ankle
    (1, _EXTRA_OFFSET + 2),  # right hip
    (2, _EXTRA_OFFSET + 1),  # right knee
    (3, _EXTRA_OFFSET + 0),  # right ankle
    (12, _EXTRA_OFFSET + 16),  # spine
    (24, _EXTRA_OFFSET + 12),  # neck
    (14, _EXTRA_OFFSET + 17),  # jaw
    (15, _EXTRA_OFFSET + 18),  # head
    (17, _EXTRA_OFFSET + 9),  # left shoulder
    (18, _EXTRA_OFFSET + 10),  # left elbow
    (19, _EXTRA_OFFSET + 11),  # left wrist
    (25, _EXTRA_OFFSET + 8),  # right shoulder
    (26, _EXTRA_OFFSET + 7),  # right elbow
    (27, _EXTRA_OFFSET + 6),  # right wrist
)

# ---------------------------------------------------------------------------------------------
# Evaluation and lifting subsets (indices into the 44 layout)
# ---------------------------------------------------------------------------------------------

#: 14 joints for H36M Protocol 2, 3DPW and multi-view evaluation: extra 0..12 (LSP-14 without
#: its top of head) plus "Head (H36M)".
LSP14_IDX_44: tuple[int, ...] = (*range(25, 38), 43)

#: 17 Human3.6M joints (H36M-VAL evaluation): extra 0..12, pelvis, spine, jaw, head.
H36M17_IDX_44: tuple[int, ...] = (*range(25, 38), 39, 41, 42, 43)

#: 17 MPI-INF-3DHP joints (MPI-INF test evaluation): extra 0..14 (incl. top of head and pelvis),
#: spine, jaw.
MPI_INF17_IDX_44: tuple[int, ...] = (*range(25, 40), 41, 42)

#: 17 2D input joints of the 2D-to-3D lifting model: extra 0..12, 14 (pelvis), 16, 17, 18.
LIFTING_2D_IDX_44: tuple[int, ...] = tuple(_EXTRA_OFFSET + k for k in (*range(13), 14, 16, 17, 18))

#: 16 root-relative 3D output joints of the lifting model: extra 0..12, 16, 17, 18 (the pelvis
#: is the origin, hence excluded).
LIFTING_3D_IDX_44: tuple[int, ...] = tuple(_EXTRA_OFFSET + k for k in (*range(13), 16, 17, 18))


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


def _check_keypoints(name: str, keypoints: object) -> Tensor:
    """Raise unless `keypoints` is a tensor of shape (..., K, C); return it."""
    x = check_tensor(name, keypoints)
    if x.ndim < 2:
        raise ValueError(f"`{name}` must have shape (..., K, C), got {tuple(x.shape)}")
    return x


def _as_index(name: str, position: int, value: object) -> int:
    """Convert one mapping entry to a Python int, or raise TypeError naming it."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` entry {position} must be an integer index, got bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"`{name}` entry {position} must be an integer index, got {type(value).__name__}"
        ) from None


def _is_pair(entry: object) -> bool:
    """True if `entry` looks like a (source, target) pair (a length-2 non-string sequence)."""
    if isinstance(entry, (str, bytes)):
        return False
    try:
        return len(entry) == 2  # type: ignore[arg-type]
    except TypeError:
        return False


def _parse_mapping(
    mapping: object, num_source: int, num_target: int
) -> tuple[list[int], list[int]]:
    """Validate `mapping` and return matching lists of source and target indices."""
    if isinstance(mapping, (str, bytes)) or not isinstance(mapping, (Sequence, Tensor)):
        raise TypeError(
            "`mapping` must be a sequence of target indices or of (source, target) pairs, "
            f"got {type(mapping).__name__}"
        )
    entries = list(mapping)
    # An empty mapping reads as an empty list of pairs: nothing is placed, the result is zeros.
    is_pairs = not entries or (not isinstance(entries[0], int) and _is_pair(entries[0]))
    sources: list[int] = []
    targets: list[int] = []
    if is_pairs:
        for position, entry in enumerate(entries):
            if not _is_pair(entry):
                raise TypeError(
                    f"`mapping` mixes forms: entry 0 is a (source, target) pair but entry "
                    f"{position} is {entry!r}"
                )
            source = _as_index("mapping", position, entry[0])
            target = _as_index("mapping", position, entry[1])
            if not 0 <= source < num_source:
                raise ValueError(
                    f"`mapping` entry {position} has source index {source}, expected 0.."
                    f"{num_source - 1} (`keypoints` has {num_source} keypoints)"
                )
            if not 0 <= target < num_target:
                raise ValueError(
                    f"`mapping` entry {position} has target index {target}, expected 0.."
                    f"{num_target - 1} (num_target={num_target})"
                )
            sources.append(source)
            targets.append(target)
    else:
        if len(entries) != num_source:
            raise ValueError(
                f"`mapping` has {len(entries)} target indices (one per source keypoint) but "
                f"`keypoints` has {num_source} keypoints"
            )
        for source, entry in enumerate(entries):
            target = _as_index("mapping", source, entry)
            if target == -1:
                continue
            if not 0 <= target < num_target:
                raise ValueError(
                    f"`mapping` entry {source} has target index {target}, expected -1 "
                    f"(dropped) or 0..{num_target - 1} (num_target={num_target})"
                )
            sources.append(source)
            targets.append(target)
    seen: dict[int, int] = {}
    for source, target in zip(sources, targets, strict=True):
        if target in seen:
            raise ValueError(
                f"`mapping` sends source keypoints {seen[target]} and {source} to the same "
                f"target index {target}; targets must be unique"
            )
        seen[target] = source
    return sources, targets


def flip_keypoints(
    keypoints: Tensor, *, permutation: Sequence[int] = FLIP_PERMUTATION_44
) -> Tensor:
    """Mirror keypoints horizontally (x -> -x) and swap left and right.

    The coordinates must be centred so that the mirror is x -> -x: 3D keypoints in metres
    (camera or root-centred frame), or crop-normalised 2D keypoints in [-0.5, 0.5]. Pixel
    coordinates must be centred first (x - width / 2). Applying the function twice with an
    involutive permutation (such as the default) returns the input.

    Args:
        keypoints: (..., K, C) keypoints with C >= 2; channel 0 is x, the others (y, z,
            confidence) are copied unchanged.
        permutation: K indices; output keypoint i takes input keypoint permutation[i] (after x
            is negated). Defaults to the 44-layout flip permutation.

    Returns:
        (..., K, C) mirrored keypoints, same dtype and device; the input is not modified and
        gradients flow back to it.

    Raises:
        TypeError: if `keypoints` is not a floating-point tensor, or `permutation` holds a
            non-integer.
        ValueError: if `keypoints` has fewer than 2 dimensions or channels, or `permutation` is
            not a permutation of 0..K-1 (e.g. its length differs from K).
    """
    x = _check_keypoints("keypoints", keypoints)
    check_floating("keypoints", x)
    num_keypoints, num_channels = x.shape[-2], x.shape[-1]
    if num_channels < 2:
        raise ValueError(
            f"`keypoints` must have shape (..., K, C) with C >= 2 channels (x, y, ...), got "
            f"{tuple(x.shape)}"
        )
    perm = [_as_index("permutation", i, p) for i, p in enumerate(permutation)]
    if len(perm) != num_keypoints:
        raise ValueError(
            f"`permutation` has {len(perm)} entries but `keypoints` has {num_keypoints} "
            f"keypoints (shape {tuple(x.shape)}); they must match"
        )
    if sorted(perm) != list(range(num_keypoints)):
        raise ValueError(
            f"`permutation` must be a permutation of 0..{num_keypoints - 1}, got {perm}"
        )
    index = torch.as_tensor(perm, dtype=torch.long, device=x.device)
    permuted = x.index_select(-2, index)
    return torch.cat((-permuted[..., :1], permuted[..., 1:]), dim=-1)


def remap_keypoints(
    keypoints: Tensor,
    mapping: Sequence[int] | Sequence[tuple[int, int]],
    *,
    num_target: int = NUM_KEYPOINTS_44,
) -> Tensor:
    """Place keypoints of a source layout into a target layout, zero-filling the rest.

    Examples: ``remap_keypoints(coco, COCO17_TO_44)`` turns (..., 17, 3) COCO keypoints into
    (..., 44, 3); ``remap_keypoints(h36m, H36M32_TO_44)`` picks 17 of 32 H36M joints.

    Args:
        keypoints: (..., S, C) keypoints in the source layout (any channels, any dtype).
        mapping: either S target indices, one per source keypoint (source i goes to target
            mapping[i]; -1 drops it), or a sequence of (source, target) pairs (sources not
            listed are dropped; a source may be listed more than once; an empty mapping places
            nothing). Targets must be unique.
        num_target: number of keypoints T of the target layout (default 44).

    Returns:
        (..., T, C) keypoints in the target layout, same dtype and device; target slots that no
        source maps to are zero (so their confidence is 0). Differentiable.

    Raises:
        TypeError: if `keypoints` is not a tensor, `num_target` not an int, or a mapping entry
            is not an integer / (source, target) pair.
        ValueError: if `keypoints` has fewer than 2 dimensions, an index is out of range, a
            target is repeated, or a per-source mapping's length differs from S.
    """
    x = _check_keypoints("keypoints", keypoints)
    if isinstance(num_target, bool) or not isinstance(num_target, int):
        raise TypeError(f"`num_target` must be an int, got {type(num_target).__name__}")
    if num_target < 1:
        raise ValueError(f"`num_target` must be positive, got {num_target}")
    sources, targets = _parse_mapping(mapping, x.shape[-2], num_target)
    out = x.new_zeros((*x.shape[:-2], num_target, x.shape[-1]))
    if not sources:
        return out
    source_index = torch.as_tensor(sources, dtype=torch.long, device=x.device)
    target_index = torch.as_tensor(targets, dtype=torch.long, device=x.device)
    return out.index_copy(-2, target_index, x.index_select(-2, source_index))
