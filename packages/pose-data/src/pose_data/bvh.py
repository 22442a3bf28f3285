"""Biovision Hierarchy (BVH) motion capture.

A BVH file has a ``HIERARCHY`` (joints with an ``OFFSET`` from the parent, ``CHANNELS`` and
``End Site`` leaves) and a ``MOTION`` block (``Frames:``, ``Frame Time:`` and one row of channel
values per frame, joints in hierarchy order).

Conventions:

- Rotation channels compose in the listed order with the first listed outermost: channels
  ``Zrotation Xrotation Yrotation`` give ``L = Rz Rx Ry`` (column vectors), angles in degrees.
- A joint's local translation is its ``OFFSET`` plus its position channels (usually only the
  root has them). Positions follow the BVH/SMPL rule of
  :mod:`pose_data.mocap_skeleton`.
- End sites become joints named ``<parent>_End`` (e.g. "Head_End") with identity rotation.
- Lengths are multiplied by `unit_scale` to give metres; BVH files carry no unit, so it must
  be given: `CMU_UNIT_TO_METRES` for the CMU conversions by cgspeed (checked against bvh11's
  metre copies), 0.01 for centimetres, 1.0 for metres.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pose_data.mocap_skeleton import MocapClip, euler_to_rotmat, forward_kinematics

__all__ = ["read_bvh"]

_POSITION_CHANNELS = ("XPOSITION", "YPOSITION", "ZPOSITION")
_ROTATION_CHANNELS = ("XROTATION", "YROTATION", "ZROTATION")


def read_bvh(path: str | os.PathLike[str], *, unit_scale: float, step: int = 1) -> MocapClip:
    """Read a ``.bvh`` file into a clip in metres.

    Args:
        path: the file.
        unit_scale: metres per file length unit (see the module docstring).
        step: keep every `step`-th frame, starting with the first (fps becomes fps / step).

    Returns:
        A :class:`MocapClip`: the BVH joints in file order plus "<parent>_End" end sites.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: naming the file, line and field of any malformed entry (bad channel name,
            wrong number of values in a frame row, non-finite values, frame count mismatch).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BVH file not found: {path}")
    if not (isinstance(unit_scale, (int, float)) and unit_scale > 0):
        raise ValueError(f"`unit_scale` must be a positive number, got {unit_scale!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"`step` must be a positive int, got {step!r}")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()

    def error(number: int, message: str) -> ValueError:
        return ValueError(f"{path}, line {number}: {message}")

    names: list[str] = []
    parents: list[int] = []
    offsets: list[np.ndarray] = []
    channels: list[tuple[str, ...]] = []
    stack: list[int] = []
    pending: tuple[str, int] | None = None  # a joint declared, waiting for "{"
    index = 0
    while index < len(lines):
        number = index + 1
        tokens = lines[index].split()
        index += 1
        if not tokens:
            continue
        keyword = tokens[0].upper()
        if keyword == "HIERARCHY":
            continue
        if keyword == "MOTION":
            break
        if keyword in ("ROOT", "JOINT"):
            if len(tokens) < 2:
                raise error(number, f"{keyword} needs a name")
            if (keyword == "ROOT") != (not names):
                raise error(number, "ROOT must come first, exactly once (one skeleton per file)")
            pending = (" ".join(tokens[1:]), stack[-1] if stack else -1)
        elif keyword == "END":
            if not stack:
                raise error(number, "End Site outside a joint")
            end_name = f"{names[stack[-1]]}_End"
            while end_name in names:
                end_name += "_"
            pending = (end_name, stack[-1])
        elif keyword == "{":
            if pending is None:
                raise error(number, "'{' without a joint")
            names.append(pending[0])
            parents.append(pending[1])
            offsets.append(np.zeros(3))
            channels.append(())
            stack.append(len(names) - 1)
            pending = None
        elif keyword == "}":
            if not stack:
                raise error(number, "unbalanced '}'")
            stack.pop()
        elif keyword == "OFFSET":
            if not stack:
                raise error(number, "OFFSET outside a joint")
            try:
                values = np.array([float(t) for t in tokens[1:4]])
            except ValueError:
                raise error(number, f"field 'OFFSET' expects 3 numbers, got {tokens[1:]}") from None
            if values.shape != (3,) or not np.all(np.isfinite(values)):
                raise error(number, f"field 'OFFSET' expects 3 finite numbers, got {tokens[1:]}")
            offsets[stack[-1]] = values
        elif keyword == "CHANNELS":
            if not stack:
                raise error(number, "CHANNELS outside a joint")
            try:
                count = int(tokens[1])
            except (IndexError, ValueError):
                raise error(number, f"field 'CHANNELS' expects a count, got {tokens[1:]}") from None
            names_given = tuple(t.upper() for t in tokens[2:])
            if len(names_given) != count:
                raise error(
                    number, f"CHANNELS declares {count} channels but lists {len(names_given)}"
                )
            unknown = [c for c in names_given if c not in _POSITION_CHANNELS + _ROTATION_CHANNELS]
            if unknown:
                raise error(number, f"unknown channel(s) {unknown}")
            if stack[-1] != 0 and any(c in _POSITION_CHANNELS for c in names_given):
                raise error(number, "position channels are only supported on the root")
            channels[stack[-1]] = names_given
        else:
            raise error(number, f"unexpected token {tokens[0]!r} in HIERARCHY")
    if not names:
        raise ValueError(f"{path}: no ROOT joint in HIERARCHY")
    if stack:
        raise ValueError(f"{path}: HIERARCHY ends with {len(stack)} unclosed '{{'")

    num_frames = None
    frame_time = None
    rows: list[np.ndarray] = []
    num_values = sum(len(c) for c in channels)
    while index < len(lines):
        number = index + 1
        line = lines[index].strip()
        index += 1
        if not line:
            continue
        lowered = line.lower()
        if lowered.startswith("frames:"):
            try:
                num_frames = int(line.split(":", 1)[1])
            except ValueError:
                raise error(number, f"field 'Frames' expects an integer, got {line!r}") from None
            continue
        if lowered.startswith("frame time:"):
            try:
                frame_time = float(line.split(":", 1)[1])
            except ValueError:
                raise error(number, f"field 'Frame Time' expects a number, got {line!r}") from None
            if not frame_time > 0:
                raise error(number, f"field 'Frame Time' must be positive, got {frame_time}")
            continue
        try:
            row = np.array(line.split(), dtype=np.float64)
        except ValueError:
            raise error(number, "non-numeric value in a frame row") from None
        if row.shape != (num_values,) or not np.all(np.isfinite(row)):
            raise error(number, f"frame row expects {num_values} finite values, got {row.size}")
        rows.append(row)
    if num_frames is None or frame_time is None:
        raise ValueError(f"{path}: MOTION lacks 'Frames:' or 'Frame Time:'")
    if len(rows) != num_frames:
        raise ValueError(f"{path}: 'Frames: {num_frames}' but {len(rows)} frame rows")
    if not rows:
        raise ValueError(f"{path}: no frames")
    motion = np.stack(rows)[::step]
    count = motion.shape[0]

    local = np.broadcast_to(np.eye(3), (count, len(names), 3, 3)).copy()
    root_translation = np.zeros((count, 3))
    # Angles per joint, grouped by rotation order for one batched conversion per order.
    groups: dict[str, list[tuple[int, np.ndarray]]] = {}
    column = 0
    for joint, joint_channels in enumerate(channels):
        values = motion[:, column : column + len(joint_channels)]
        column += len(joint_channels)
        rotation_axes = ""
        rotation_columns = []
        for position, channel in enumerate(joint_channels):
            if channel in _ROTATION_CHANNELS:
                rotation_axes += channel[0]
                rotation_columns.append(position)
            elif joint == 0:
                root_translation[:, _POSITION_CHANNELS.index(channel)] = values[:, position]
        if rotation_axes:
            # First listed is outermost: apply the listed axes in reverse order.
            angles = np.radians(values[:, rotation_columns[::-1]])
            groups.setdefault(rotation_axes[::-1], []).append((joint, angles))
    for axes, members in groups.items():
        joints = [joint for joint, _ in members]
        local[:, joints] = euler_to_rotmat(np.stack([a for _, a in members], axis=1), axes)
    offsets_array = np.stack(offsets) * float(unit_scale)
    root_translation = root_translation * float(unit_scale) + offsets_array[0]
    offsets_array[0] = 0.0
    positions, global_rotations = forward_kinematics(
        parents, offsets_array, local, root_translation
    )
    return MocapClip(
        joint_names=tuple(names),
        parents=tuple(parents),
        offsets=offsets_array,
        local_rotations=local,
        global_rotations=global_rotations,
        root_translation=root_translation,
        positions=positions,
        fps=_frame_rate(frame_time) / step,
        source=str(path),
    )


def _frame_rate(frame_time: float) -> float:
    """1 / frame_time, snapped to the nearest integer within 0.01 (".0083333" -> 120)."""
    rate = 1.0 / frame_time
    return float(round(rate)) if abs(rate - round(rate)) < 0.01 else rate
