"""Poses for the synthetic world: motion capture retargeted to SMPL, or a joint-limit sampler.

Retargeting works on joint positions in the H36M-17 layout (pose-data's mocap readers give
them for CMU ASF/AMC and BVH clips), so it does not depend on the capture skeleton:

- the root orientation is the frame spanned by the hip line and the pelvis-to-spine direction,
  matched to the same frame of the SMPL rest pose;
- every other driven joint gets the smallest rotation that turns its rest bone (SMPL joint ->
  child joint) onto the captured bone direction, composed on its parent's rotation (swing only;
  twist about the bone is not observable from positions and stays zero);
- joints without a captured bone (wrists, hands, feet, toes, spine3) keep the identity locally.

H36M-17 order: 0 pelvis, 1 r_hip, 2 r_knee, 3 r_ankle, 4 l_hip, 5 l_knee, 6 l_ankle, 7 spine,
8 thorax, 9 neck/nose, 10 head, 11 l_shoulder, 12 l_elbow, 13 l_wrist, 14 r_shoulder,
15 r_elbow, 16 r_wrist.
"""

from __future__ import annotations

import numpy as np
import torch

import pose_geometry as pg

__all__ = ["retarget_h36m17_to_smpl", "sample_joint_limited_poses"]

# (SMPL joint, SMPL child whose rest offset is the bone, H36M start, H36M end)
_SWING_BONES = (
    (3, 6, 0, 7),  # spine1: pelvis -> spine
    (6, 9, 7, 8),  # spine2: spine -> thorax
    (1, 4, 4, 5),  # left hip -> knee
    (2, 5, 1, 2),  # right hip -> knee
    (4, 7, 5, 6),  # left knee -> ankle
    (5, 8, 2, 3),  # right knee -> ankle
    (12, 15, 8, 10),  # neck -> head
    (13, 16, 8, 11),  # left collar -> shoulder
    (14, 17, 8, 14),  # right collar -> shoulder
    (16, 18, 11, 12),  # left shoulder -> elbow
    (17, 19, 14, 15),  # right shoulder -> elbow
    (18, 20, 12, 13),  # left elbow -> wrist
    (19, 21, 15, 16),  # right elbow -> wrist
)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.clip(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9, None)


def _frame(left: np.ndarray, right: np.ndarray, low: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(..., 3, 3) orthonormal frame: x = right->left, y = low->up (orthogonalised), z = x × y."""
    x = _normalize(left - right)
    y = up - low
    y = _normalize(y - np.sum(y * x, axis=-1, keepdims=True) * x)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) smallest rotation taking unit vectors a onto b (Rodrigues)."""
    a = _normalize(a)
    b = _normalize(b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True)
    angle = np.arctan2(sin, cos)
    # anti-parallel: any axis perpendicular to a
    fallback = np.cross(a, np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]))
    axis = np.where(sin > 1e-8, axis / np.clip(sin, 1e-12, None), _normalize(fallback))
    rotvec = torch.from_numpy(axis * angle)
    return pg.axis_angle_to_rotmat(rotvec).numpy()


def retarget_h36m17_to_smpl(
    joints_h36m: np.ndarray, rest_joints: np.ndarray, parents: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Turn captured joint positions into SMPL rotations.

    Args:
        joints_h36m: (T, 17, 3) positions, metres, y up.
        rest_joints: (24, 3) SMPL rest-pose joint positions of the target body, y up.
        parents: (24,) SMPL parents (default: pose_geometry.SMPL_PARENTS).

    Returns:
        global_orient (T, 3, 3) and body_pose (T, 23, 3, 3) local rotation matrices.
    """
    joints = np.asarray(joints_h36m, dtype=np.float64)
    rest = np.asarray(rest_joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (17, 3):
        raise ValueError(f"`joints_h36m` must have shape (T, 17, 3), got {joints.shape}")
    if rest.shape != (24, 3):
        raise ValueError(f"`rest_joints` must have shape (24, 3), got {rest.shape}")
    parent = np.asarray(pg.SMPL_PARENTS if parents is None else parents)
    num_frames = joints.shape[0]
    glob = np.tile(np.eye(3), (num_frames, 24, 1, 1))
    target_frame = _frame(joints[:, 4], joints[:, 1], joints[:, 0], joints[:, 7])
    rest_frame = _frame(rest[1], rest[2], rest[0], rest[3])
    glob[:, 0] = target_frame @ rest_frame.T
    swing = {smpl: (child, start, end) for smpl, child, start, end in _SWING_BONES}
    for j in range(1, 24):
        parent_rot = glob[:, parent[j]]
        if j in swing:
            child, start, end = swing[j]
            bone_now = np.einsum("tij,j->ti", parent_rot, rest[child] - rest[j])
            target = joints[:, end] - joints[:, start]
            glob[:, j] = _align(bone_now, target) @ parent_rot
        else:
            glob[:, j] = parent_rot
    local = np.empty_like(glob)
    local[:, 0] = glob[:, 0]
    for j in range(1, 24):
        local[:, j] = np.swapaxes(glob[:, parent[j]], -1, -2) @ glob[:, j]
    return local[:, 0].astype(np.float32), local[:, 1:].astype(np.float32)


# Per SMPL body joint (1..23): (low, high) limits of the axis-angle components (x, y, z), radians.
_LIMITS = {
    "hip": ((-1.6, 0.5), (-0.5, 0.5), (-0.6, 0.6)),
    "knee": ((0.0, 2.2), (-0.1, 0.1), (-0.1, 0.1)),
    "ankle": ((-0.4, 0.5), (-0.3, 0.3), (-0.2, 0.2)),
    "spine": ((-0.3, 0.5), (-0.3, 0.3), (-0.25, 0.25)),
    "foot": ((-0.2, 0.2), (-0.1, 0.1), (-0.1, 0.1)),
    "neck": ((-0.4, 0.5), (-0.5, 0.5), (-0.3, 0.3)),
    "collar": ((-0.2, 0.2), (-0.2, 0.2), (-0.3, 0.3)),
    "shoulder": ((-0.8, 0.8), (-1.2, 1.2), (-1.3, 1.0)),
    "elbow": ((-0.1, 0.1), (0.0, 2.3), (-0.1, 0.1)),
    "wrist": ((-0.4, 0.4), (-0.3, 0.3), (-0.6, 0.6)),
    "hand": ((-0.1, 0.1), (-0.1, 0.1), (-0.1, 0.1)),
}
_JOINT_KIND = (
    "hip", "hip", "spine", "knee", "knee", "spine", "ankle", "ankle", "spine", "foot", "foot",
    "neck", "collar", "collar", "neck", "shoulder", "shoulder", "elbow", "elbow", "wrist",
    "wrist", "hand", "hand",
)  # fmt: skip
# Right-side joints mirror the y and z limits (SMPL's left/right joints bend the same way in x).
_RIGHT = {2, 5, 8, 11, 14, 17, 19, 21, 23}


def sample_joint_limited_poses(num: int, rng: np.random.Generator) -> np.ndarray:
    """(num, 69) axis-angle body poses drawn uniformly within rough anatomical limits.

    Left/right joints share limits mirrored in the y and z components; the elbow bends about
    the y axis with the sign of its side.
    """
    poses = np.zeros((num, 23, 3))
    for joint in range(23):
        limits = _LIMITS[_JOINT_KIND[joint]]
        for axis in range(3):
            low, high = limits[axis]
            values = rng.uniform(low, high, size=num)
            if joint + 1 in _RIGHT and axis > 0:
                values = -values
            poses[:, joint, axis] = values
    return poses.reshape(num, 69).astype(np.float32)
