"""Motion-capture clips: skeleton, forward kinematics, subsampling and the H36M-17 mapping.

A :class:`MocapClip` is what the ASF/AMC and BVH readers return. Its skeleton follows the BVH
convention, which is also SMPL's: every joint is a point with a rotation; the rotation of a
joint moves its children. With ``L`` the local and ``G`` the global rotations::

    G[root] = L[root]                      p[root] = root_translation
    G[j]    = G[parent(j)] @ L[j]          p[j]    = p[parent(j)] + G[parent(j)] @ offsets[j]

so at the rest pose (all ``L`` = identity) ``p[j] - p[parent(j)] = offsets[j]``. Rotation
matrices act on column vectors; lengths are metres; world axes are the file's (CMU: y up).

Retargeting to SMPL uses ``global_rotations`` (or ``local_rotations``) with the rest-pose
``offsets``: the rest pose is the file's zero pose (CMU ASF: T-pose-like with arms sideways),
which differs from SMPL's, so a per-joint rest-pose correction is part of any retargeting.

Shapes: T frames, J joints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pose_data.h36m_layout import H36M17_NAMES

__all__ = [
    "CMU_ASF_TO_H36M17",
    "CMU_BVH_TO_H36M17",
    "CMU_UNIT_TO_METRES",
    "MocapClip",
    "bone_lengths",
    "euler_to_rotmat",
    "forward_kinematics",
    "mocap_to_h36m17",
    "subsample_clip",
]

#: Metres per CMU length unit. The CMU ASF files declare ``:units length 0.45``: a file length
#: of 1 is 1/0.45 inch, so metres = value x (1/0.45) x 2.54 / 100 (the CMU FAQ's factor). The
#: cgspeed BVH conversions keep the same units (bvh11's metre copies of 131_01.bvh are scaled by
#: exactly this factor). Checked on the real clips: femurs 0.37-0.44 m, tibias 0.37-0.45 m.
CMU_UNIT_TO_METRES: float = (1.0 / 0.45) * 2.54 / 100.0


@dataclass(frozen=True, eq=False)
class MocapClip:
    """A motion-capture clip in metres.

    Attributes:
        joint_names: (J,) joint names; the root is joint 0.
        parents: (J,) parent index of each joint, -1 for the root; parents precede children.
        offsets: (J, 3) rest-pose offset of each joint from its parent, metres, in the parent's
            frame (= world axes at the rest pose); the root's is zero.
        local_rotations: (T, J, 3, 3) rotation of each joint relative to its parent.
        global_rotations: (T, J, 3, 3) rotation of each joint in world axes.
        root_translation: (T, 3) root position, metres, world axes.
        positions: (T, J, 3) joint positions, metres, world axes.
        fps: frames per second.
        source: where the clip came from (a file path or a description).
    """

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    local_rotations: np.ndarray
    global_rotations: np.ndarray
    root_translation: np.ndarray
    positions: np.ndarray
    fps: float
    source: str = ""

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.positions.shape[0])

    def joint_index(self, name: str) -> int:
        """Index of joint `name`; KeyError naming the available joints if absent."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(
                f"joint '{name}' not in clip {self.source!r}; joints: {list(self.joint_names)}"
            ) from None


def _check_parents(parents: Sequence[int]) -> tuple[int, ...]:
    parents = tuple(int(p) for p in parents)
    if not parents or parents[0] != -1:
        raise ValueError(f"`parents` must start with the root (-1), got {list(parents)[:5]}")
    for index, parent in enumerate(parents[1:], start=1):
        if not 0 <= parent < index:
            raise ValueError(f"`parents[{index}]` is {parent}; every parent must precede its child")
    return parents


def forward_kinematics(
    parents: Sequence[int],
    offsets: np.ndarray,
    local_rotations: np.ndarray,
    root_translation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions and global rotations from local rotations (BVH/SMPL convention).

    Args:
        parents: (J,) parent indices, -1 for the root (joint 0); parents precede children.
        offsets: (J, 3) rest-pose offsets from the parent, metres.
        local_rotations: (T, J, 3, 3) local rotation matrices.
        root_translation: (T, 3) root positions, metres.

    Returns:
        positions (T, J, 3) and global_rotations (T, J, 3, 3), float64.

    Raises:
        ValueError: if shapes disagree or `parents` is not topologically ordered.
    """
    parents = _check_parents(parents)
    num_joints = len(parents)
    offsets = np.asarray(offsets, dtype=np.float64)
    local = np.asarray(local_rotations, dtype=np.float64)
    root = np.asarray(root_translation, dtype=np.float64)
    if offsets.shape != (num_joints, 3):
        raise ValueError(f"`offsets` must have shape ({num_joints}, 3), got {offsets.shape}")
    if local.ndim != 4 or local.shape[1:] != (num_joints, 3, 3):
        raise ValueError(
            f"`local_rotations` must have shape (T, {num_joints}, 3, 3), got {local.shape}"
        )
    if root.shape != (local.shape[0], 3):
        raise ValueError(
            f"`root_translation` must have shape ({local.shape[0]}, 3), got {root.shape}"
        )
    positions = np.empty((local.shape[0], num_joints, 3))
    rotations = np.empty_like(local)
    positions[:, 0] = root
    rotations[:, 0] = local[:, 0]
    for joint in range(1, num_joints):
        parent = parents[joint]
        rotations[:, joint] = rotations[:, parent] @ local[:, joint]
        positions[:, joint] = positions[:, parent] + rotations[:, parent] @ offsets[joint]
    return positions, rotations


def euler_to_rotmat(angles_rad: np.ndarray, axes: str) -> np.ndarray:
    """Rotation matrices from angles about fixed axes applied in the order of `axes`.

    ``axes = "XYZ"`` means rotate about x first, then y, then z: R = Rz(c) Ry(b) Rx(a) for
    column vectors (roma's extrinsic "xyz"). pose-geometry has no Euler-angle conversion; the
    elementary rotations are built here with numpy (a million of them per second), which the
    mocap readers need for every joint of every frame.

    Args:
        angles_rad: (..., k) angles in radians, one per letter of `axes`.
        axes: k letters from "XYZ" (case-insensitive).

    Returns:
        (..., 3, 3) float64.
    """
    angles = np.asarray(angles_rad, dtype=np.float64)
    axes = axes.upper()
    if not axes or angles.ndim < 1 or angles.shape[-1] != len(axes):
        raise ValueError(f"`angles_rad` must have shape (..., {len(axes)}), got {angles.shape}")
    if any(letter not in "XYZ" for letter in axes):
        raise ValueError(f"`axes` must use the letters X, Y, Z, got {axes!r}")
    result = None
    for column, letter in enumerate(axes):
        cos, sin = np.cos(angles[..., column]), np.sin(angles[..., column])
        rotation = np.zeros((*angles.shape[:-1], 3, 3))
        i = "XYZ".index(letter)
        j, k = (i + 1) % 3, (i + 2) % 3
        rotation[..., i, i] = 1.0
        rotation[..., j, j] = cos
        rotation[..., k, k] = cos
        rotation[..., j, k] = -sin
        rotation[..., k, j] = sin
        result = rotation if result is None else rotation @ result
    return result


def subsample_clip(clip: MocapClip, *, step: int) -> MocapClip:
    """Keep every `step`-th frame (starting at frame 0); the frame rate becomes fps / step."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"`step` must be a positive int, got {step!r}")
    if step == 1:
        return clip
    return replace(
        clip,
        local_rotations=clip.local_rotations[::step],
        global_rotations=clip.global_rotations[::step],
        root_translation=clip.root_translation[::step],
        positions=clip.positions[::step],
        fps=clip.fps / step,
    )


def bone_lengths(clip: MocapClip) -> dict[str, float]:
    """Rest-pose distance of every joint from its parent, metres, keyed by the joint's name."""
    lengths = np.linalg.norm(clip.offsets, axis=1)
    return {name: float(length) for name, length in zip(clip.joint_names, lengths, strict=True)}


#: H36M-17 joint -> CMU ASF joint(s) of the readers' skeleton (ASF joints sit at the START of
#: the bone of the same name; "<bone>_end" is a leaf bone's end). A tuple is averaged. The
#: pelvis is the hips' midpoint (the CMU root lies ~9 cm above it); spine, thorax, neck/nose and
#: head are the CMU points closest to Human3.6M's proportions (pelvis-thorax 0.40 vs 0.47 m).
CMU_ASF_TO_H36M17: dict[str, str | tuple[str, ...]] = {
    "pelvis": ("lfemur", "rfemur"),
    "right_hip": "rfemur",
    "right_knee": "rtibia",
    "right_ankle": "rfoot",
    "left_hip": "lfemur",
    "left_knee": "ltibia",
    "left_ankle": "lfoot",
    "spine": "upperback",
    "thorax": "lowerneck",
    "neck_nose": "upperneck",
    "head": "head",
    "left_shoulder": "lhumerus",
    "left_elbow": "lradius",
    "left_wrist": "lwrist",
    "right_shoulder": "rhumerus",
    "right_elbow": "rradius",
    "right_wrist": "rwrist",
}

#: H36M-17 joint -> joint(s) of the CMU BVH conversions by cgspeed (B. Hahne), whose joints are
#: the ASF bone starts under other names.
CMU_BVH_TO_H36M17: dict[str, str | tuple[str, ...]] = {
    "pelvis": ("LeftHip", "RightHip"),
    "right_hip": "RightHip",
    "right_knee": "RightKnee",
    "right_ankle": "RightAnkle",
    "left_hip": "LeftHip",
    "left_knee": "LeftKnee",
    "left_ankle": "LeftAnkle",
    "spine": "Chest",
    "thorax": "lowerneck",
    "neck_nose": "Neck",
    "head": "Head",
    "left_shoulder": "LeftShoulder",
    "left_elbow": "LeftElbow",
    "left_wrist": "LeftWrist",
    "right_shoulder": "RightShoulder",
    "right_elbow": "RightElbow",
    "right_wrist": "RightWrist",
}

_BUILT_IN_MAPS = (("CMU ASF", CMU_ASF_TO_H36M17), ("CMU BVH", CMU_BVH_TO_H36M17))


def _names(entry: str | tuple[str, ...]) -> tuple[str, ...]:
    return (entry,) if isinstance(entry, str) else tuple(entry)


def mocap_to_h36m17(
    clip: MocapClip, *, joint_map: Mapping[str, str | Sequence[str]] | None = None
) -> np.ndarray:
    """Positions of the 17 Human3.6M lifting joints (H36M-17 order) from a mocap clip.

    Args:
        clip: a clip from `read_amc` or `read_bvh`.
        joint_map: H36M-17 joint name (`H36M17_NAMES`) -> clip joint name, or several names
            whose positions are averaged. Default: the first of `CMU_ASF_TO_H36M17`,
            `CMU_BVH_TO_H36M17` whose joints all exist in the clip.

    Returns:
        (T, 17, 3) positions in metres, world axes of the clip.

    Raises:
        ValueError: if no built-in map fits the clip, or `joint_map` misses an H36M-17 joint.
        KeyError: if `joint_map` names a joint the clip lacks.
    """
    if joint_map is None:
        available = set(clip.joint_names)
        for _, candidate in _BUILT_IN_MAPS:
            if all(set(_names(v)) <= available for v in candidate.values()):
                joint_map = candidate
                break
        else:
            raise ValueError(
                f"no built-in H36M-17 map fits clip {clip.source!r} (joints "
                f"{list(clip.joint_names)}); pass `joint_map`"
            )
    missing = [name for name in H36M17_NAMES if name not in joint_map]
    if missing:
        raise ValueError(f"`joint_map` lacks H36M-17 joint(s) {missing}")
    columns = []
    for name in H36M17_NAMES:
        entry = joint_map[name]
        indices = [clip.joint_index(n) for n in _names(entry)]  # type: ignore[arg-type]
        columns.append(clip.positions[:, indices].mean(axis=1))
    return np.stack(columns, axis=1)
