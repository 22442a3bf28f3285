"""Acclaim ASF/AMC motion capture (the CMU Graphics Lab Motion Capture Database format).

An ``.asf`` file describes a subject's skeleton (bones with a rest direction, length, local
axes and degrees of freedom); an ``.amc`` file gives, per frame, the root translation and
rotation and every bone's rotation angles.

Conventions (Acclaim / CMU):

- A bone's local rotation is ``C M C⁻¹``: ``C`` comes from the bone's ``axis`` angles and
  ``M`` from its AMC angles, both composed in the axis order of the file ("XYZ": x first,
  then y, then z, i.e. ``Rz Ry Rx`` for column vectors); a bone's world rotation is its
  parent's times its local rotation, and the bone's end lies at its start plus the world
  rotation applied to ``direction x length``.
- Units: ``:units length L`` means a file length of 1 is 1/L inch; this reader converts to
  metres with ``(1 / L) x 0.0254`` (CMU: L = 0.45, see `CMU_UNIT_TO_METRES`). ``angle deg``
  or ``rad`` applies to the ASF axes; an AMC ``:DEGREES`` / ``:RADIANS`` line to its values.
- CMU clips are 120 fps (a few 60 fps); AMC files do not store the rate, hence `fps`.

The returned :class:`~pose_data.mocap_skeleton.MocapClip` uses the BVH convention: one joint
``root`` (the root's position), one joint per bone placed at the bone's START and carrying the
bone's rotation (so joint "lfemur" is the left hip joint, "ltibia" the left knee), and a joint
``<bone>_end`` at the end of every leaf bone (e.g. "head_end", "ltoes_end").
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_data.mocap_skeleton import MocapClip, euler_to_rotmat, forward_kinematics

__all__ = ["AsfBone", "AsfSkeleton", "read_amc", "read_asf"]

_INCH_IN_METRES = 0.0254
_ROTATION_DOFS = ("rx", "ry", "rz")


@dataclass(frozen=True, eq=False)
class AsfBone:
    """One bone of an ASF skeleton (lengths in file units, angles in the file's angle unit).

    Attributes:
        name: bone name.
        direction: (3,) unit rest direction in world axes.
        length: bone length, file units.
        axis: (3,) angles of the bone's local axes.
        axis_order: the order the axis angles are applied in, e.g. "XYZ".
        dofs: rotational degrees of freedom in AMC value order, e.g. ("rx", "ry", "rz").
        limits: one (low, high) pair per dof (informative; not enforced).
    """

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str
    dofs: tuple[str, ...]
    limits: tuple[tuple[float, float], ...]


@dataclass(frozen=True, eq=False)
class AsfSkeleton:
    """A parsed ASF file.

    Attributes:
        name: the ``:name`` entry.
        length_unit: the ``:units length`` value (CMU: 0.45).
        angle_unit: "deg" or "rad".
        root_order: root channels in AMC value order, e.g. ("TX", "TY", "TZ", "RX", "RY", "RZ").
        root_axis: axis order of the root rotation, e.g. "XYZ".
        root_position: (3,) root position added to the AMC translation, file units.
        root_orientation: (3,) root axis angles.
        bones: the bones in file order.
        children: bone (or "root") name -> child bone names, from ``:hierarchy``.
        source: the file path.
    """

    name: str
    length_unit: float
    angle_unit: str
    root_order: tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    bones: tuple[AsfBone, ...]
    children: dict[str, tuple[str, ...]]
    source: str = ""

    @property
    def metres_per_unit(self) -> float:
        """Metres per file length unit: (1 / length_unit) inch."""
        return _INCH_IN_METRES / self.length_unit

    def bone(self, name: str) -> AsfBone:
        """The bone called `name` (KeyError if absent)."""
        for bone in self.bones:
            if bone.name == name:
                return bone
        raise KeyError(f"bone '{name}' not in skeleton {self.source!r}")


class _Lines:
    """Non-empty, comment-free lines of a file with their line numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = path.read_text(encoding="utf-8", errors="replace")
        self.items = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if line:
                self.items.append((number, line))
        self.position = 0

    def peek(self) -> tuple[int, str] | None:
        return self.items[self.position] if self.position < len(self.items) else None

    def next(self) -> tuple[int, str]:
        item = self.peek()
        if item is None:
            raise ValueError(f"{self.path}: unexpected end of file")
        self.position += 1
        return item

    def error(self, number: int, message: str) -> ValueError:
        return ValueError(f"{self.path}, line {number}: {message}")


def _floats(lines: _Lines, number: int, tokens: list[str], count: int, field: str) -> np.ndarray:
    try:
        values = np.array([float(t) for t in tokens[:count]], dtype=np.float64)
    except ValueError:
        raise lines.error(
            number, f"field '{field}' expects {count} numbers, got {tokens}"
        ) from None
    if values.shape != (count,) or not np.all(np.isfinite(values)):
        raise lines.error(number, f"field '{field}' expects {count} finite numbers, got {tokens}")
    return values


def _section_lines(lines: _Lines) -> Iterator[tuple[int, list[str]]]:
    """Lines up to the next ':' keyword, tokenised."""
    while (item := lines.peek()) is not None and not item[1].startswith(":"):
        lines.next()
        yield item[0], item[1].split()


def _parse_bone(lines: _Lines, begin_number: int) -> AsfBone:
    fields: dict[str, object] = {"dofs": (), "limits": []}
    limits: list[tuple[float, float]] = []
    reading_limits = False
    while True:
        number, line = lines.next()
        tokens = line.split()
        key = tokens[0].lower()
        if key == "end":
            break
        if key == "limits" or (reading_limits and line.startswith("(")):
            reading_limits = True
            text = line[len("limits") :] if key == "limits" else line
            pair = text.replace("(", " ").replace(")", " ").split()
            values = []
            for token in pair:
                lowered = token.lower()
                values.append(
                    -math.inf if lowered == "-inf" else math.inf if lowered == "inf" else None
                )
                if values[-1] is None:
                    try:
                        values[-1] = float(token)
                    except ValueError:
                        raise lines.error(number, f"bad limits entry {line!r}") from None
            if len(values) != 2:
                raise lines.error(number, f"limits expects '(low high)', got {line!r}")
            limits.append((values[0], values[1]))  # type: ignore[arg-type]
            continue
        reading_limits = False
        if key == "id":
            continue
        if key == "name":
            fields["name"] = tokens[1]
        elif key == "direction":
            fields["direction"] = _floats(lines, number, tokens[1:], 3, "direction")
        elif key == "length":
            fields["length"] = float(_floats(lines, number, tokens[1:], 1, "length")[0])
        elif key == "axis":
            fields["axis"] = _floats(lines, number, tokens[1:], 3, "axis")
            fields["axis_order"] = tokens[4].upper() if len(tokens) > 4 else "XYZ"
        elif key == "dof":
            dofs = tuple(t.lower() for t in tokens[1:])
            unsupported = [d for d in dofs if d not in _ROTATION_DOFS]
            if unsupported:
                raise lines.error(
                    number,
                    f"dof {unsupported} not supported (only rx, ry, rz on bones); got {dofs}",
                )
            fields["dofs"] = dofs
        # bodymass, cofmass and other optional entries are ignored.
    missing = [k for k in ("name", "direction", "length", "axis") if k not in fields]
    if missing:
        raise lines.error(begin_number, f"bone block lacks field(s) {missing}")
    dofs = fields["dofs"]
    if limits and len(limits) != len(dofs):  # type: ignore[arg-type]
        raise lines.error(
            begin_number,
            f"bone '{fields['name']}' has {len(dofs)} dofs but {len(limits)} limits",  # type: ignore[arg-type]
        )
    direction = np.asarray(fields["direction"])
    norm = np.linalg.norm(direction)
    if norm > 0:
        direction = direction / norm
    axis_order = str(fields["axis_order"])
    if sorted(axis_order) != ["X", "Y", "Z"]:
        raise lines.error(begin_number, f"axis order must permute 'XYZ', got {axis_order!r}")
    return AsfBone(
        name=str(fields["name"]),
        direction=direction,
        length=float(fields["length"]),  # type: ignore[arg-type]
        axis=np.asarray(fields["axis"]),
        axis_order=axis_order,
        dofs=dofs,  # type: ignore[arg-type]
        limits=tuple(limits),
    )


def read_asf(path: str | os.PathLike[str]) -> AsfSkeleton:
    """Parse an Acclaim ``.asf`` skeleton file.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: naming the file, line and field of any malformed entry, an unknown bone in
            the hierarchy, or a missing section.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ASF file not found: {path}")
    lines = _Lines(path)
    name = ""
    length_unit = 1.0
    angle_unit = "deg"
    root: dict[str, object] = {}
    bones: list[AsfBone] = []
    children: dict[str, tuple[str, ...]] = {}
    seen_sections: set[str] = set()
    while lines.peek() is not None:
        number, line = lines.next()
        if not line.startswith(":"):
            raise lines.error(number, f"expected a ':section' keyword, got {line!r}")
        tokens = line.split()
        section = tokens[0][1:].lower()
        seen_sections.add(section)
        if section == "name":
            name = " ".join(tokens[1:])
        elif section == "units":
            for unit_number, unit_tokens in _section_lines(lines):
                key = unit_tokens[0].lower()
                if key == "length":
                    length_unit = float(
                        _floats(lines, unit_number, unit_tokens[1:], 1, "units length")[0]
                    )
                    if length_unit <= 0:
                        raise lines.error(
                            unit_number, f"units length must be > 0, got {length_unit}"
                        )
                elif key == "angle":
                    angle_unit = unit_tokens[1].lower()[:3] if len(unit_tokens) > 1 else ""
                    if angle_unit not in ("deg", "rad"):
                        raise lines.error(
                            unit_number, f"units angle must be deg or rad, got {unit_tokens}"
                        )
        elif section == "root":
            for root_number, root_tokens in _section_lines(lines):
                key = root_tokens[0].lower()
                if key == "order":
                    root["order"] = tuple(t.upper() for t in root_tokens[1:])
                elif key == "axis":
                    root["axis"] = root_tokens[1].upper()
                elif key == "position":
                    root["position"] = _floats(lines, root_number, root_tokens[1:], 3, "position")
                elif key == "orientation":
                    root["orientation"] = _floats(
                        lines, root_number, root_tokens[1:], 3, "orientation"
                    )
        elif section == "bonedata":
            while (bone_item := lines.peek()) is not None and not bone_item[1].startswith(":"):
                begin_number, begin = lines.next()
                if begin.lower() != "begin":
                    raise lines.error(begin_number, f"expected 'begin' of a bone, got {begin!r}")
                bones.append(_parse_bone(lines, begin_number))
        elif section == "hierarchy":
            for hierarchy_number, hierarchy_tokens in _section_lines(lines):
                key = hierarchy_tokens[0].lower()
                if key in ("begin", "end"):
                    continue
                parent = hierarchy_tokens[0]
                if parent in children:
                    raise lines.error(hierarchy_number, f"parent '{parent}' listed twice")
                children[parent] = tuple(hierarchy_tokens[1:])
        else:  # :version, :documentation, :skin and others
            for _ in _section_lines(lines):
                pass
    for required in ("root", "bonedata", "hierarchy"):
        if required not in seen_sections:
            raise ValueError(f"{path}: missing section ':{required}'")
    order = root.get("order", ("TX", "TY", "TZ", "RX", "RY", "RZ"))
    if sorted(order) != ["RX", "RY", "RZ", "TX", "TY", "TZ"]:  # type: ignore[arg-type]
        raise ValueError(f"{path}: field ':root order' must list TX TY TZ RX RY RZ, got {order}")
    bone_names = {bone.name for bone in bones}
    if len(bone_names) != len(bones):
        raise ValueError(f"{path}: duplicate bone names in ':bonedata'")
    for parent, kids in children.items():
        for bone_name in (parent, *kids):
            if bone_name != "root" and bone_name not in bone_names:
                raise ValueError(f"{path}: ':hierarchy' names unknown bone '{bone_name}'")
    return AsfSkeleton(
        name=name,
        length_unit=length_unit,
        angle_unit=angle_unit,
        root_order=tuple(order),  # type: ignore[arg-type]
        root_axis=str(root.get("axis", "XYZ")),
        root_position=np.asarray(root.get("position", np.zeros(3)), dtype=np.float64),
        root_orientation=np.asarray(root.get("orientation", np.zeros(3)), dtype=np.float64),
        bones=tuple(bones),
        children=children,
        source=str(path),
    )


def _read_amc_values(path: Path, skeleton: AsfSkeleton) -> tuple[dict[str, np.ndarray], str | None]:
    """Per bone (and "root") an array (T, num_values) of the AMC values, and the angle unit."""
    expected = {"root": len(skeleton.root_order)}
    expected.update({bone.name: len(bone.dofs) for bone in skeleton.bones if bone.dofs})
    frames: list[dict[str, list[float]]] = []
    angle_unit: str | None = None
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            keyword = line[1:].upper()
            if keyword.startswith("DEG"):
                angle_unit = "deg"
            elif keyword.startswith("RAD"):
                angle_unit = "rad"
            continue
        tokens = line.split()
        if len(tokens) == 1 and tokens[0].isdigit():
            frame_number = int(tokens[0])
            if not frames:
                first_frame = frame_number
            elif frame_number != first_frame + len(frames):
                raise ValueError(
                    f"{path}, line {number}: frame number {frame_number} follows frame "
                    f"{first_frame + len(frames) - 1}; expected consecutive frame numbers"
                )
            frames.append({})
            continue
        if not frames:
            raise ValueError(f"{path}, line {number}: data line before the first frame number")
        bone = tokens[0]
        if bone not in expected:
            raise ValueError(
                f"{path}, line {number}: unknown bone '{bone}' (not a bone with dofs in "
                f"{skeleton.source})"
            )
        try:
            values = [float(t) for t in tokens[1:]]
        except ValueError:
            raise ValueError(f"{path}, line {number}: non-numeric value in {line!r}") from None
        if len(values) != expected[bone] or not math.isfinite(sum(values)):
            raise ValueError(
                f"{path}, line {number}: bone '{bone}' expects {expected[bone]} finite values, "
                f"got {tokens[1:]}"
            )
        if bone in frames[-1]:
            raise ValueError(f"{path}, line {number}: bone '{bone}' repeated in a frame")
        frames[-1][bone] = values
    if not frames:
        raise ValueError(f"{path}: no frames")
    for index, frame in enumerate(frames):
        if len(frame) != len(expected):
            missing = sorted(set(expected) - set(frame))
            raise ValueError(f"{path}: frame {index + 1} lacks bone(s) {missing}")
    arrays = {
        bone: np.array([frame[bone] for frame in frames], dtype=np.float64).reshape(
            len(frames), count
        )
        for bone, count in expected.items()
    }
    return arrays, angle_unit


def read_amc(
    path: str | os.PathLike[str],
    skeleton: AsfSkeleton,
    *,
    fps: float = 120.0,
    step: int = 1,
    unit_scale: float | None = None,
) -> MocapClip:
    """Read an Acclaim ``.amc`` motion for `skeleton` into a clip in metres.

    Args:
        path: the ``.amc`` file.
        skeleton: its skeleton, from `read_asf`.
        fps: frame rate of the file (CMU: 120).
        step: keep every `step`-th frame, starting with the first (the returned fps is
            fps / step).
        unit_scale: metres per file length unit; default ``skeleton.metres_per_unit``
            ((1 / 0.45) x 0.0254 for CMU).

    Returns:
        A :class:`MocapClip` with joints "root", one per bone (at the bone's start) and
        "<bone>_end" for leaf bones (see the module docstring).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: naming the file, line (or frame) and bone of any malformed or missing value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AMC file not found: {path}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"`step` must be a positive int, got {step!r}")
    if not (isinstance(fps, (int, float)) and fps > 0):
        raise ValueError(f"`fps` must be positive, got {fps!r}")
    scale = skeleton.metres_per_unit if unit_scale is None else float(unit_scale)
    if not scale > 0:
        raise ValueError(f"`unit_scale` must be positive, got {unit_scale!r}")
    values, amc_angle_unit = _read_amc_values(path, skeleton)
    values = {name: array[::step] for name, array in values.items()}
    num_frames = values["root"].shape[0]
    motion_to_rad = math.pi / 180 if (amc_angle_unit or skeleton.angle_unit) == "deg" else 1.0
    axis_to_rad = math.pi / 180 if skeleton.angle_unit == "deg" else 1.0

    # Joints: root, then bones depth-first (each at its start), leaf bones followed by an end.
    # Rotations are gathered per joint as (axis angles, motion angles, axis order) and turned
    # into matrices in one batched call per axis order.
    names: list[str] = ["root"]
    parents: list[int] = [-1]
    offsets: list[np.ndarray] = [np.zeros(3)]
    rotating: list[tuple[int, np.ndarray, np.ndarray, str]] = []

    root_values = values["root"]
    order = skeleton.root_order
    translation = np.stack([root_values[:, order.index(c)] for c in ("TX", "TY", "TZ")], axis=1)
    root_angles = np.stack(
        [root_values[:, order.index("R" + letter)] for letter in skeleton.root_axis], axis=1
    )
    rotating.append(
        (
            0,
            skeleton.root_orientation * axis_to_rad,
            root_angles * motion_to_rad,
            skeleton.root_axis,
        )
    )
    root_translation = (translation + skeleton.root_position) * scale

    bones = {bone.name: bone for bone in skeleton.bones}
    stack = [(child, 0, None) for child in reversed(skeleton.children.get("root", ()))]
    visited: set[str] = set()
    while stack:
        name, parent_index, parent_bone = stack.pop()
        if name in visited:
            raise ValueError(f"{skeleton.source}: bone '{name}' appears twice in ':hierarchy'")
        visited.add(name)
        bone = bones[name]
        names.append(name)
        parents.append(parent_index)
        offsets.append(
            np.zeros(3)
            if parent_bone is None
            else parent_bone.direction * parent_bone.length * scale
        )
        index = len(names) - 1
        if bone.dofs:
            angles = np.zeros((num_frames, 3))
            for column, dof in enumerate(bone.dofs):
                angles[:, _ROTATION_DOFS.index(dof)] = values[name][:, column]
            by_order = angles[:, ["XYZ".index(letter) for letter in bone.axis_order]]
            axis_angles = bone.axis[["XYZ".index(letter) for letter in bone.axis_order]]
            rotating.append(
                (index, axis_angles * axis_to_rad, by_order * motion_to_rad, bone.axis_order)
            )
        kids = skeleton.children.get(name, ())
        if not kids:
            names.append(f"{name}_end")
            parents.append(index)
            offsets.append(bone.direction * bone.length * scale)
        for child in reversed(kids):
            stack.append((child, index, bone))
    local_rotations = np.broadcast_to(np.eye(3), (num_frames, len(names), 3, 3)).copy()
    for axis_order in sorted({item[3] for item in rotating}):
        group = [item for item in rotating if item[3] == axis_order]
        axis_rotation = euler_to_rotmat(np.stack([item[1] for item in group]), axis_order)
        motion = euler_to_rotmat(np.stack([item[2] for item in group], axis=1), axis_order)
        joints = [item[0] for item in group]
        local_rotations[:, joints] = axis_rotation @ motion @ axis_rotation.swapaxes(-1, -2)
    unreachable = sorted(set(bones) - visited)
    if unreachable:
        raise ValueError(
            f"{skeleton.source}: bone(s) {unreachable} are not reachable from 'root' in "
            "':hierarchy'"
        )
    offsets_array = np.stack(offsets)
    positions, global_rotations = forward_kinematics(
        parents, offsets_array, local_rotations, root_translation
    )
    return MocapClip(
        joint_names=tuple(names),
        parents=tuple(parents),
        offsets=offsets_array,
        local_rotations=local_rotations,
        global_rotations=global_rotations,
        root_translation=root_translation,
        positions=positions,
        fps=float(fps) / step,
        source=str(path),
    )
