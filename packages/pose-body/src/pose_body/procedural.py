"""A procedural body model in the exact SMPL format: the embedded default for tests and demos.

The real SMPL model is licence-restricted, so this module builds a stand-in with the same file
format and topology facts that code relies on: 6890 vertices, SMPL's 24-joint kinematic tree,
a sparse ``J_regressor``, skinning weights, 10 shape directions, 207 pose directions (zeros),
and the vertices smplx reads as nose, eyes, ears, toes, heels and fingertips placed at those
anatomical spots. It also builds a 19-joint extra regressor (``SMPL_to_J19.pkl``'s layout) and
a 17-joint Human3.6M regressor (``J_regressor_h36m.npy``'s layout).

Construction (deterministic, no randomness):

- The body (about 1.70 m, SMPL's rest T-pose and axes: y up, x to the body's left, z forward,
  pelvis near the origin) is a set of closed surfaces, one per part: torso, neck, head, nose,
  ears, upper+lower limbs as one tube each, hands with thumbs, feet. Each is a generalised
  cylinder: rings of a superellipse cross-section whose size follows a smooth (monotone cubic)
  profile along the part's axis, closed by rounded caps and a pole at each end.
- Every joint of the tree and every regressed joint is the average of one ring of vertices (a
  ring is placed exactly at each such position), so joints sit inside the body where an
  anatomist would put them.
- Skinning weights follow each part's axis: a vertex belongs to the bone that spans it and is
  blended smoothly with the next bone within a few centimetres of a joint; the torso also
  blends toward the collars, shoulders and hips near them.
- Shape direction k moves vertices by a smooth field per unit beta: 0 overall size (height),
  1 girth, 2 leg length, 3 torso length, 4 shoulder width, 5 hip width, 6 arm length, 7 belly,
  8 head size, 9 chest and arm bulk.
- Vertex indices are finally permuted so that the 21 smplx vertex-joint ids (SMPL-H topology,
  e.g. nose 332, left heel 3387) hold the vertices at those spots.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator
from smplx.vertex_ids import vertex_ids as _SMPLX_VERTEX_IDS

from pose_body.model_files import (
    SMPLModelData,
    write_joint_regressor,
    write_smpl_model_pickle,
)
from pose_geometry import SMPL_PARENTS

__all__ = [
    "H36M17_REGRESSOR_JOINTS",
    "ProceduralBodyModel",
    "ProceduralModelFiles",
    "procedural_body_model",
    "write_procedural_model",
]

NUM_VERTICES = 6890
_NUM_BETAS = 10

#: Order of the 17 joints of ``J_regressor_h36m.npy`` (Human3.6M's 17-joint skeleton as SPIN and
#: ProHMR-era code use it). Only the procedural regressor is built from it.
H36M17_REGRESSOR_JOINTS: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck_nose", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Body plan (metres, SMPL axes; left side, x > 0; the right side is the mirror image)
# ---------------------------------------------------------------------------------------------

_GROUND_Y = -1.17
_ARM_Y, _ARM_Z = 0.215, -0.015
#: Joint positions along each part's axis (the ring through each is placed exactly there).
_Y_PELVIS, _Y_SPINE1, _Y_SPINE2, _Y_SPINE3 = -0.23, -0.12, 0.0, 0.08
_Y_HIP, _Y_KNEE, _Y_ANKLE = -0.31, -0.70, -1.095
_Y_NECK, _Y_HEAD = 0.27, 0.36
_X_COLLAR, _X_SHOULDER, _X_ELBOW, _X_WRIST, _X_HAND = 0.075, 0.175, 0.44, 0.69, 0.77
_Z_FOOT = 0.12
_LEG_CENTRE = ((-0.20, 0.075, 0.0), (_Y_HIP, 0.075, 0.0), (_Y_KNEE, 0.095, 0.005),
               (_Y_ANKLE, 0.085, -0.02), (-1.13, 0.085, -0.02))  # fmt: skip
_FOOT_X = 0.09

# Ring counts and segments per part, chosen so that the total is exactly 6890 vertices.
_RES = {
    "torso": (44, 40),
    "neck": (9, 24),
    "head": (26, 32),
    "nose": (7, 10),
    "ear": (7, 10),
    "leg": (35, 24),
    "foot": (16, 20),
    "arm": (26, 20),
    "hand": (12, 16),
    "thumb": (6, 8),
}


@dataclass
class _Part:
    """One closed surface: vertices, faces and per-vertex data used by weights and shapes."""

    name: str
    side: int  # +1 left, -1 right, 0 centre
    vertices: np.ndarray  # (n, 3)
    faces: np.ndarray  # (f, 3), local indices
    axial: np.ndarray  # (n,) axial coordinate s of each vertex
    centre: np.ndarray  # (n, 3) centre of each vertex's ring (the pole itself for poles)
    rings: dict[float, np.ndarray] = field(default_factory=dict)  # anchor s -> ring vertex ids


def _smoothstep(x: np.ndarray, edge0: float, edge1: float) -> np.ndarray:
    t = np.clip((np.asarray(x, dtype=np.float64) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _tube(
    name: str,
    *,
    axis: Sequence[float],
    side_axis: Sequence[float],
    stations: Sequence[Sequence[float]],
    resolution: tuple[int, int],
    caps: tuple[float, float],
    anchors: Sequence[float] = (),
    exponent: float = 2.0,
) -> _Part:
    """A closed generalised cylinder along `axis`.

    Args:
        axis: direction d of increasing s.
        side_axis: direction e1 of the first cross-section radius (made orthogonal to d);
            e2 = d × e1.
        stations: rows (s, a, b, o1, o2): at axial coordinate s the cross-section is a
            superellipse with radii a (along e1) and b (along e2) centred at
            s·d + o1·e1 + o2·e2. The first and last s are the poles.
        resolution: (number of rings, vertices per ring).
        caps: lengths over which the radii round off to 0 at the start and the end.
        anchors: axial coordinates at which a ring must lie exactly (joints, regressed points).
        exponent: superellipse exponent (2 = ellipse; larger = boxier).
    """
    d = np.asarray(axis, dtype=np.float64)
    d /= np.linalg.norm(d)
    e1 = np.asarray(side_axis, dtype=np.float64)
    e1 = e1 - (e1 @ d) * d
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    table = np.asarray(stations, dtype=np.float64)
    s0, s1 = table[0, 0], table[-1, 0]
    profile = PchipInterpolator(table[:, 0], table[:, 1:], axis=0)
    num_rings, num_seg = resolution

    u = (np.arange(num_rings) + 0.5) / num_rings
    s_rings = s0 + (s1 - s0) * (1.0 - np.cos(np.pi * u)) / 2.0
    taken: set[int] = set()
    for anchor in anchors:
        order = np.argsort(np.abs(s_rings - anchor))
        index = next(int(i) for i in order if int(i) not in taken)
        s_rings[index] = anchor
        taken.add(index)
    s_rings = np.sort(s_rings)
    if np.any(np.diff(s_rings) <= 0):  # pragma: no cover - anchors are distinct by design
        raise RuntimeError(f"procedural part {name!r}: two rings share a position")

    values = profile(s_rings)  # (R, 4): a, b, o1, o2
    dist = np.minimum(s_rings - s0, s1 - s_rings)
    cap = np.where(s_rings - s0 < s1 - s_rings, caps[0], caps[1])
    factor = np.where(
        dist < cap, np.sqrt(np.clip(1.0 - (1.0 - dist / np.maximum(cap, 1e-12)) ** 2, 0, 1)), 1.0
    )
    a, b = values[:, 0] * factor, values[:, 1] * factor
    centres = s_rings[:, None] * d + values[:, 2:3] * e1 + values[:, 3:4] * e2  # (R, 3)
    theta = 2.0 * np.pi * np.arange(num_seg) / num_seg
    cos, sin = np.cos(theta), np.sin(theta)
    power = 2.0 / exponent
    c1 = np.sign(cos) * np.abs(cos) ** power
    c2 = np.sign(sin) * np.abs(sin) ** power
    ring_points = (
        centres[:, None, :]
        + (a[:, None] * c1[None, :])[..., None] * e1
        + (b[:, None] * c2[None, :])[..., None] * e2
    )  # (R, S, 3)
    end_values = profile(np.array([s0, s1]))
    poles = np.array([s0, s1])[:, None] * d + end_values[:, 2:3] * e1 + end_values[:, 3:4] * e2
    vertices = np.concatenate([ring_points.reshape(-1, 3), poles])
    axial = np.concatenate([np.repeat(s_rings, num_seg), [s0, s1]])
    centre = np.concatenate([np.repeat(centres, num_seg, axis=0), poles])

    def vid(ring: np.ndarray | int, seg: np.ndarray | int) -> np.ndarray:
        return np.asarray(ring) * num_seg + np.asarray(seg) % num_seg

    ring = np.arange(num_rings - 1)[:, None]
    seg = np.arange(num_seg)[None, :]
    v00, v01 = vid(ring, seg), vid(ring, seg + 1)
    v10, v11 = vid(ring + 1, seg), vid(ring + 1, seg + 1)
    side_faces = np.concatenate(
        [np.stack([v00, v01, v11], -1).reshape(-1, 3), np.stack([v00, v11, v10], -1).reshape(-1, 3)]
    )
    start_pole, end_pole = num_rings * num_seg, num_rings * num_seg + 1
    seg1 = np.arange(num_seg)
    start_faces = np.stack([np.full(num_seg, start_pole), vid(0, seg1 + 1), vid(0, seg1)], -1)
    end_faces = np.stack(
        [np.full(num_seg, end_pole), vid(num_rings - 1, seg1), vid(num_rings - 1, seg1 + 1)], -1
    )
    faces = np.concatenate([side_faces, start_faces, end_faces]).astype(np.int64)
    rings = {
        float(anchor): vid(int(np.argmin(np.abs(s_rings - anchor))), seg1) for anchor in anchors
    }
    return _Part(name, 0, vertices, faces, axial, centre, rings)


def _mirror(part: _Part) -> _Part:
    """The right-side copy of a left-side part: x -> -x, faces re-oriented."""
    flip = np.array([-1.0, 1.0, 1.0])
    return _Part(
        part.name,
        -part.side,
        part.vertices * flip,
        part.faces[:, ::-1].copy(),
        part.axial.copy(),
        part.centre * flip,
        {k: v.copy() for k, v in part.rings.items()},
    )


def _build_parts() -> list[_Part]:
    """All parts of the body, left before right, in a fixed order."""
    parts: list[_Part] = []
    torso_anchors = (_Y_PELVIS, _Y_SPINE1, _Y_SPINE2, _Y_SPINE3, -0.29, -0.27, 0.22, 0.02)
    torso = _tube(
        "torso",
        axis=(0, 1, 0),
        side_axis=(1, 0, 0),  # e2 = y × x = -z: o2 > 0 moves backwards
        stations=[
            (-0.41, 0.110, 0.075, 0.0, 0.008),
            (-0.35, 0.160, 0.106, 0.0, 0.014),
            (-0.27, 0.172, 0.110, 0.0, 0.016),
            (-0.19, 0.160, 0.100, 0.0, 0.008),
            (-0.11, 0.144, 0.094, 0.0, 0.0),
            (-0.03, 0.142, 0.096, 0.0, -0.004),
            (0.05, 0.152, 0.104, 0.0, -0.005),
            (0.13, 0.166, 0.110, 0.0, -0.003),
            (0.20, 0.178, 0.102, 0.0, 0.006),
            (0.25, 0.176, 0.090, 0.0, 0.014),
            (0.305, 0.150, 0.075, 0.0, 0.016),
        ],
        resolution=_RES["torso"],
        caps=(0.07, 0.06),
        anchors=torso_anchors,
        exponent=2.4,
    )
    parts.append(torso)
    neck = _tube(
        "neck",
        axis=(0, 1, 0),
        side_axis=(1, 0, 0),
        stations=[
            (0.19, 0.060, 0.060, 0.0, 0.018),
            (0.24, 0.058, 0.058, 0.0, 0.015),
            (_Y_NECK, 0.056, 0.056, 0.0, 0.012),
            (0.33, 0.052, 0.054, 0.0, 0.002),
            (_Y_HEAD, 0.050, 0.053, 0.0, -0.004),
            (0.40, 0.050, 0.053, 0.0, -0.006),
        ],
        resolution=_RES["neck"],
        caps=(0.03, 0.03),
        anchors=(_Y_NECK, _Y_HEAD, 0.30),
    )
    parts.append(neck)
    head = _tube(
        "head",
        axis=(0, 1, 0),
        side_axis=(1, 0, 0),
        stations=[
            (0.315, 0.042, 0.052, 0.0, -0.030),
            (0.35, 0.056, 0.072, 0.0, -0.022),
            (0.40, 0.068, 0.090, 0.0, -0.012),
            (0.45, 0.076, 0.098, 0.0, -0.004),
            (0.49, 0.077, 0.097, 0.0, 0.004),
            (0.535, 0.075, 0.092, 0.0, 0.010),
        ],
        resolution=_RES["head"],
        caps=(0.035, 0.08),
        anchors=(0.37, 0.38, 0.46, 0.47, 0.53),
    )
    parts.append(head)
    nose = _tube(
        "nose",
        axis=(0, 0, 1),
        side_axis=(1, 0, 0),  # e2 = z × x = y
        stations=[
            (0.080, 0.014, 0.024, 0.0, 0.006),
            (0.100, 0.013, 0.022, 0.0, 0.002),
            (0.115, 0.011, 0.014, 0.0, -0.006),
            (0.125, 0.008, 0.008, 0.0, -0.010),
        ],
        resolution=_RES["nose"],
        caps=(0.004, 0.010),
    )
    nose.vertices[:, 1] += 0.425
    nose.centre[:, 1] += 0.425
    parts.append(nose)
    ear = _tube(
        "ear",
        axis=(0, 1, 0),
        side_axis=(1, 0, 0),
        stations=[
            (0.400, 0.009, 0.016, 0.0, 0.0),
            (0.430, 0.010, 0.019, 0.0, 0.002),
            (0.465, 0.009, 0.016, 0.0, 0.006),
        ],
        resolution=_RES["ear"],
        caps=(0.016, 0.016),
    )
    ear.vertices += np.array([0.076, 0.0, -0.008])
    ear.centre += np.array([0.076, 0.0, -0.008])
    ear.side = 1

    leg_profile = [
        (-0.20, 0.066, 0.070),
        (-0.30, 0.080, 0.084),
        (-0.42, 0.079, 0.083),
        (-0.55, 0.066, 0.070),
        (-0.65, 0.056, 0.059),
        (-0.70, 0.052, 0.056),
        (-0.77, 0.054, 0.058),
        (-0.85, 0.057, 0.062),
        (-0.95, 0.045, 0.048),
        (-1.04, 0.036, 0.040),
        (_Y_ANKLE, 0.034, 0.040),
        (-1.13, 0.034, 0.040),
    ]
    centre_y = np.array([c[0] for c in _LEG_CENTRE])
    centre_x = PchipInterpolator(-centre_y, [c[1] for c in _LEG_CENTRE])
    centre_z = PchipInterpolator(-centre_y, [c[2] for c in _LEG_CENTRE])
    calf = lambda y: -0.012 * np.exp(-(((y + 0.85) / 0.09) ** 2))  # noqa: E731
    leg = _tube(
        "leg",
        axis=(0, -1, 0),
        side_axis=(1, 0, 0),  # e2 = -y × x = z
        stations=[
            (-y, a, b, float(centre_x(-y)), float(centre_z(-y) + calf(y)))
            for y, a, b in leg_profile
        ],
        resolution=_RES["leg"],
        caps=(0.05, 0.03),
        anchors=(-_Y_HIP, -_Y_KNEE, -_Y_ANKLE, 0.35, 0.33, 0.705, 1.10),
    )
    leg.side = 1
    foot = _tube(
        "foot",
        axis=(0, 0, 1),
        side_axis=(1, 0, 0),  # e2 = z × x = y
        stations=[
            (z, a, b, _FOOT_X + dx, _GROUND_Y + b)
            for z, a, b, dx in [
                (-0.088, 0.030, 0.034, 0.0),
                (-0.06, 0.032, 0.038, 0.0),
                (-0.02, 0.036, 0.046, 0.0),
                (0.03, 0.040, 0.040, 0.002),
                (0.08, 0.045, 0.030, 0.004),
                (_Z_FOOT, 0.047, 0.023, 0.004),
                (0.16, 0.042, 0.016, 0.002),
                (0.188, 0.036, 0.013, 0.0),
            ]
        ],
        resolution=_RES["foot"],
        caps=(0.03, 0.03),
        anchors=(_Z_FOOT,),
        exponent=2.6,
    )
    foot.side = 1
    arm = _tube(
        "arm",
        axis=(1, 0, 0),
        side_axis=(0, 0, 1),  # e2 = x × z = -y
        stations=[
            (x, a, b, _ARM_Z, -_ARM_Y)
            for x, a, b in [
                (0.05, 0.048, 0.050),
                (_X_COLLAR, 0.050, 0.052),
                (_X_SHOULDER, 0.052, 0.055),
                (0.24, 0.047, 0.048),
                (0.32, 0.042, 0.042),
                (0.40, 0.036, 0.036),
                (_X_ELBOW, 0.034, 0.034),
                (0.50, 0.037, 0.035),
                (0.58, 0.033, 0.029),
                (0.65, 0.028, 0.022),
                (_X_WRIST, 0.027, 0.020),
                (0.715, 0.027, 0.020),
            ]
        ],
        resolution=_RES["arm"],
        caps=(0.04, 0.02),
        anchors=(_X_COLLAR, _X_SHOULDER, _X_ELBOW, _X_WRIST, 0.18),
    )
    arm.side = 1
    hand = _tube(
        "hand",
        axis=(1, 0, 0),
        side_axis=(0, 0, 1),
        stations=[
            (x, a, b, _ARM_Z, -_ARM_Y)
            for x, a, b in [
                (0.672, 0.028, 0.018),
                (0.70, 0.034, 0.019),
                (0.73, 0.043, 0.020),
                (_X_HAND, 0.046, 0.017),
                (0.82, 0.043, 0.012),
                (0.865, 0.037, 0.010),
                (0.885, 0.034, 0.010),
            ]
        ],
        resolution=_RES["hand"],
        caps=(0.015, 0.02),
        anchors=(_X_HAND,),
        exponent=2.6,
    )
    hand.side = 1
    thumb_dir = np.array([0.75, -0.12, 0.65])
    thumb = _tube(
        "thumb",
        axis=thumb_dir,
        side_axis=(0, 1, 0),
        stations=[
            (0.0, 0.011, 0.013, 0.0, 0.0),
            (0.04, 0.010, 0.011, 0.0, 0.0),
            (0.075, 0.009, 0.009, 0.0, 0.0),
        ],
        resolution=_RES["thumb"],
        caps=(0.01, 0.009),
    )
    offset = np.array([0.715, _ARM_Y - 0.004, _ARM_Z + 0.02])
    thumb.vertices += offset
    thumb.centre += offset
    thumb.side = 1

    for part in (ear, leg, foot, arm, hand, thumb):
        parts.extend([part, _mirror(part)])
    return parts


# ---------------------------------------------------------------------------------------------
# Skinning weights and shape directions
# ---------------------------------------------------------------------------------------------

_L = {"hip": 1, "knee": 4, "ankle": 7, "foot": 10, "collar": 13, "shoulder": 16, "elbow": 18,
      "wrist": 20, "hand": 22}  # fmt: skip
_R = {"hip": 2, "knee": 5, "ankle": 8, "foot": 11, "collar": 14, "shoulder": 17, "elbow": 19,
      "wrist": 21, "hand": 23}  # fmt: skip


def _chain_weights(
    s: np.ndarray, bones: Sequence[int], boundaries: Sequence[float], widths: Sequence[float]
) -> np.ndarray:
    """(n, 24) weights along an axis: bone i spans boundaries[i-1]..boundaries[i], blended."""
    weights = np.zeros((len(s), 24))
    steps = [np.ones(len(s))]
    steps += [_smoothstep(s, b - w, b + w) for b, w in zip(boundaries, widths, strict=True)]
    steps.append(np.zeros(len(s)))
    for i, bone in enumerate(bones):
        weights[:, bone] += steps[i] - steps[i + 1]
    return weights


def _blend_in(weights: np.ndarray, joint: int, amount: np.ndarray) -> np.ndarray:
    """Move a fraction `amount` (n,) of every vertex's weight onto `joint`."""
    out = weights * (1.0 - amount)[:, None]
    out[:, joint] += amount
    return out


def _part_weights(part: _Part) -> np.ndarray:
    v = part.vertices
    ids = _L if part.side >= 0 else _R
    x_abs = np.abs(v[:, 0])
    if part.name == "torso":
        w = _chain_weights(
            v[:, 1], [0, 3, 6, 9, 12], [_Y_SPINE1, _Y_SPINE2, _Y_SPINE3, _Y_NECK + 0.01],
            [0.06, 0.05, 0.04, 0.025],
        )  # fmt: skip
        left = v[:, 0] > 0
        collar = _smoothstep(x_abs, 0.05, 0.12) * _smoothstep(v[:, 1], 0.10, 0.19)
        shoulder = 0.6 * _smoothstep(x_abs, 0.14, 0.185) * _smoothstep(v[:, 1], 0.13, 0.20)
        hip = 0.5 * _smoothstep(-v[:, 1], 0.25, 0.36) * _smoothstep(x_abs, 0.02, 0.09)
        for side_mask, side_ids in ((left, _L), (~left, _R)):
            for name, amount in (("collar", collar), ("shoulder", shoulder), ("hip", hip)):
                w[side_mask] = _blend_in(w[side_mask], side_ids[name], amount[side_mask])
        return w
    if part.name == "neck":
        return _chain_weights(v[:, 1], [9, 12, 15], [_Y_NECK, _Y_HEAD], [0.02, 0.02])
    if part.name in ("head", "nose", "ear"):
        w = np.zeros((len(v), 24))
        w[:, 15] = 1.0
        return w
    if part.name == "leg":
        return _chain_weights(
            -v[:, 1], [0, ids["hip"], ids["knee"], ids["ankle"]], [0.25, -_Y_KNEE, -_Y_ANKLE],
            [0.05, 0.04, 0.02],
        )  # fmt: skip
    if part.name == "foot":
        return _chain_weights(v[:, 2], [ids["ankle"], ids["foot"]], [_Z_FOOT], [0.025])
    if part.name == "arm":
        return _chain_weights(
            x_abs, [ids["collar"], ids["shoulder"], ids["elbow"], ids["wrist"]],
            [_X_SHOULDER - 0.02, _X_ELBOW, _X_WRIST], [0.045, 0.035, 0.02],
        )  # fmt: skip
    if part.name == "hand":
        return _chain_weights(x_abs, [ids["wrist"], ids["hand"]], [_X_HAND], [0.025])
    if part.name == "thumb":
        w = np.zeros((len(v), 24))
        w[:, ids["wrist"]] = 1.0
        return w
    raise AssertionError(part.name)  # pragma: no cover


def _part_shapes(part: _Part) -> np.ndarray:
    """(n, 3, 10) displacement per unit beta."""
    v = part.vertices
    n = len(v)
    out = np.zeros((n, 3, _NUM_BETAS))
    radial = v - part.centre
    side = np.sign(v[:, 0])
    name = part.name
    limb = name in ("leg", "arm")
    # 0: overall size, about the pelvis.
    out[:, :, 0] = 0.04 * (v - np.array([0.0, _Y_PELVIS, 0.0]))
    # 1: girth.
    girth = {"torso": 0.12, "leg": 0.10, "arm": 0.10, "neck": 0.06}.get(name, 0.03)
    out[:, :, 1] = girth * radial
    if name == "torso":
        belly = np.exp(-(((v[:, 1] + 0.08) / 0.12) ** 2)) * (v[:, 2] > 0)
        out[:, 2, 1] += 0.015 * belly
    # 2: leg length (legs stretch below the hip, feet follow).
    leg_span = _Y_HIP - _Y_ANKLE
    if name == "leg":
        out[:, 1, 2] = -0.06 * np.clip((_Y_HIP - v[:, 1]) / leg_span, 0.0, 1.0)
    elif name == "foot":
        out[:, 1, 2] = -0.06
    # 3: torso length (everything above the waist rises).
    rise = _smoothstep(v[:, 1], _Y_PELVIS, 0.22)
    if name in ("torso",):
        out[:, 1, 3] = 0.04 * rise
    elif name in ("neck", "head", "nose", "ear", "arm", "hand", "thumb"):
        out[:, 1, 3] = 0.04
    # 4: shoulder width.
    if name == "torso":
        out[:, 0, 4] = 0.03 * v[:, 0] / 0.18 * _smoothstep(v[:, 1], 0.0, 0.2)
    elif name in ("arm", "hand", "thumb"):
        out[:, 0, 4] = 0.03 * side
    # 5: hip width.
    if name == "torso":
        out[:, 0, 5] = 0.025 * v[:, 0] / 0.17 * _smoothstep(-v[:, 1], 0.08, 0.27)
    elif name in ("leg", "foot"):
        out[:, 0, 5] = 0.02 * side
    # 6: arm length.
    if name == "arm":
        reach = np.clip((np.abs(v[:, 0]) - _X_SHOULDER) / (_X_WRIST - _X_SHOULDER), 0.0, 1.0)
        out[:, 0, 6] = 0.04 * side * reach
    elif name in ("hand", "thumb"):
        out[:, 0, 6] = 0.04 * side
    # 7: belly.
    if name == "torso":
        bump = np.exp(-(((v[:, 1] + 0.10) / 0.10) ** 2) - (v[:, 0] / 0.12) ** 2)
        out[:, 2, 7] = 0.035 * bump * np.clip(v[:, 2] / 0.1, 0.0, 1.0)
    # 8: head size.
    if name in ("head", "nose", "ear"):
        out[:, :, 8] = 0.15 * (v - np.array([0.0, 0.42, 0.0]))
    # 9: chest and arm bulk.
    if name == "torso":
        chest = np.exp(-(((v[:, 1] - 0.13) / 0.08) ** 2))
        out[:, :, 9] = 0.08 * radial * chest[:, None]
    elif limb:
        out[:, :, 9] = 0.06 * radial
    return out


# ---------------------------------------------------------------------------------------------
# Regressors
# ---------------------------------------------------------------------------------------------


def _ring_row(parts: dict[str, _Part], offsets: dict[str, int], key: str, anchor: float) -> dict:
    part = parts[key]
    ids = part.rings[float(anchor)] + offsets[key]
    return {int(i): 1.0 / len(ids) for i in ids}


@dataclass(frozen=True, eq=False)
class ProceduralBodyModel:
    """The procedural SMPL-format body model and its two joint regressors (numpy, read-only).

    Attributes:
        model: the SMPL arrays (6890 vertices, 24 joints, 10 betas, posedirs all zero).
        extra_regressor: (19, 6890) regressor of the 19 extra keypoints (``SMPL_to_J19.pkl``'s
            layout: keypoints 25..43 of `pose_geometry.KEYPOINT_NAMES_44`).
        h36m_regressor: (17, 6890) regressor of the Human3.6M joints, in the order
            `H36M17_REGRESSOR_JOINTS`.
    """

    model: SMPLModelData
    extra_regressor: np.ndarray
    h36m_regressor: np.ndarray


@dataclass(frozen=True)
class ProceduralModelFiles:
    """Paths written by `write_procedural_model`."""

    model: Path
    extra_regressor: Path
    h36m_regressor: Path


@functools.cache
def procedural_body_model() -> ProceduralBodyModel:
    """Build (once per process; cached) the procedural SMPL-format body model.

    Deterministic: every call in every process returns the same arrays. Takes a fraction of a
    second.

    Returns:
        ProceduralBodyModel(model, extra_regressor, h36m_regressor).
    """
    part_list = _build_parts()
    vertices = np.concatenate([p.vertices for p in part_list])
    if len(vertices) != NUM_VERTICES:  # pragma: no cover - guarded by the resolution table
        raise RuntimeError(f"procedural body has {len(vertices)} vertices, expected 6890")
    starts = np.cumsum([0] + [len(p.vertices) for p in part_list])[:-1]
    faces = np.concatenate([p.faces + s for p, s in zip(part_list, starts, strict=True)])
    weights = np.concatenate([_part_weights(p) for p in part_list])
    shapedirs = np.concatenate([_part_shapes(p) for p in part_list])

    # Name each part (left/right explicit) to address its rings.
    named: dict[str, _Part] = {}
    offsets: dict[str, int] = {}
    for part, start in zip(part_list, starts, strict=True):
        key = part.name if part.side == 0 else f"{part.name}_{'l' if part.side > 0 else 'r'}"
        named[key] = part
        offsets[key] = int(start)

    def rows(specs: Sequence[tuple[str, float]]) -> np.ndarray:
        out = np.zeros((len(specs), NUM_VERTICES))
        for j, (key, anchor) in enumerate(specs):
            for vertex, value in _ring_row(named, offsets, key, anchor).items():
                out[j, vertex] = value
        return out

    joints = rows([
        ("torso", _Y_PELVIS), ("leg_l", -_Y_HIP), ("leg_r", -_Y_HIP), ("torso", _Y_SPINE1),
        ("leg_l", -_Y_KNEE), ("leg_r", -_Y_KNEE), ("torso", _Y_SPINE2), ("leg_l", -_Y_ANKLE),
        ("leg_r", -_Y_ANKLE), ("torso", _Y_SPINE3), ("foot_l", _Z_FOOT), ("foot_r", _Z_FOOT),
        ("neck", _Y_NECK), ("arm_l", _X_COLLAR), ("arm_r", _X_COLLAR), ("neck", _Y_HEAD),
        ("arm_l", _X_SHOULDER), ("arm_r", _X_SHOULDER), ("arm_l", _X_ELBOW),
        ("arm_r", _X_ELBOW), ("arm_l", _X_WRIST), ("arm_r", _X_WRIST), ("hand_l", _X_HAND),
        ("hand_r", _X_HAND),
    ])  # fmt: skip
    extra = rows([
        ("leg_r", 1.10), ("leg_r", 0.705), ("leg_r", 0.35), ("leg_l", 0.35), ("leg_l", 0.705),
        ("leg_l", 1.10), ("arm_r", _X_WRIST), ("arm_r", _X_ELBOW), ("arm_r", 0.18),
        ("arm_l", 0.18), ("arm_l", _X_ELBOW), ("arm_l", _X_WRIST), ("neck", 0.30),
        ("head", 0.53), ("torso", -0.29), ("torso", 0.22), ("torso", 0.02), ("head", 0.37),
        ("head", 0.46),
    ])  # fmt: skip
    h36m = rows([
        ("torso", -0.27), ("leg_r", 0.33), ("leg_r", 0.705), ("leg_r", 1.10), ("leg_l", 0.33),
        ("leg_l", 0.705), ("leg_l", 1.10), ("torso", 0.02), ("torso", 0.22), ("head", 0.38),
        ("head", 0.47), ("arm_l", 0.18), ("arm_l", _X_ELBOW), ("arm_l", _X_WRIST),
        ("arm_r", 0.18), ("arm_r", _X_ELBOW), ("arm_r", _X_WRIST),
    ])  # fmt: skip

    # Landmarks: the vertex nearest each anatomical spot, within the named part.
    def nearest(key: str, point: Sequence[float]) -> int:
        part = named[key]
        local = int(np.argmin(np.linalg.norm(part.vertices - np.asarray(point), axis=1)))
        return offsets[key] + local

    def farthest(key: str, direction: Sequence[float]) -> int:
        part = named[key]
        return offsets[key] + int(np.argmax(part.vertices @ np.asarray(direction, dtype=float)))

    landmarks: dict[str, int] = {"nose": farthest("nose", (0, 0, 1))}
    for side, sign in (("l", 1.0), ("r", -1.0)):
        landmarks[f"{side}eye"] = nearest("head", (sign * 0.032, 0.447, 0.12))
        landmarks[f"{side}ear"] = farthest(f"ear_{side}", (sign, 0, 0))
        toe, hand, thumb = f"foot_{side}", f"hand_{side}", f"thumb_{side}"
        big = "LBigToe" if side == "l" else "RBigToe"
        small = "LSmallToe" if side == "l" else "RSmallToe"
        heel = "LHeel" if side == "l" else "RHeel"
        landmarks[big] = nearest(toe, (sign * (_FOOT_X - 0.015), _GROUND_Y + 0.012, 0.19))
        landmarks[small] = nearest(toe, (sign * (_FOOT_X + 0.035), _GROUND_Y + 0.01, 0.15))
        landmarks[heel] = nearest(toe, (sign * _FOOT_X, _GROUND_Y + 0.012, -0.09))
        landmarks[f"{side}thumb"] = farthest(thumb, (sign * 0.75, -0.12, 0.65))
        for finger, z in (("index", 0.026), ("middle", 0.009), ("ring", -0.009), ("pinky", -0.026)):
            reach = 0.885 - 0.012 * (abs(z) / 0.026) ** 2
            landmarks[f"{side}{finger}"] = nearest(hand, (sign * reach, _ARM_Y, _ARM_Z + z))

    # Permute vertices so each landmark sits at smplx's SMPL-H vertex id for it.
    targets = _SMPLX_VERTEX_IDS["smplh"]
    new_to_old = np.full(NUM_VERTICES, -1, dtype=np.int64)
    for name, target in targets.items():
        new_to_old[target] = landmarks[name]
    rest = np.setdiff1d(np.arange(NUM_VERTICES), new_to_old[new_to_old >= 0])
    new_to_old[new_to_old < 0] = rest
    old_to_new = np.argsort(new_to_old)

    parents = np.array(SMPL_PARENTS, dtype=np.int64)
    model = SMPLModelData(
        v_template=vertices[new_to_old],
        shapedirs=shapedirs[new_to_old],
        posedirs=np.zeros((NUM_VERTICES, 3, 207)),
        J_regressor=joints[:, new_to_old],
        weights=weights[new_to_old],
        kintree_table=np.stack([parents, np.arange(24)]),
        faces=old_to_new[faces],
    )
    extra = extra[:, new_to_old]
    h36m = h36m[:, new_to_old]
    extra.flags.writeable = False
    h36m.flags.writeable = False
    return ProceduralBodyModel(model=model, extra_regressor=extra, h36m_regressor=h36m)


def write_procedural_model(directory: str | os.PathLike[str]) -> ProceduralModelFiles:
    """Write the procedural model as official-format files into `directory` (created if needed).

    Files: ``SMPL_NEUTRAL.pkl`` (the official pickle layout without chumpy: numpy arrays and a
    scipy sparse ``J_regressor``; smplx's own loader and `load_smpl_model` both read it),
    ``SMPL_to_J19.pkl`` (a pickled dense (19, 6890) array) and ``J_regressor_h36m.npy``. Each is
    written atomically.

    Returns:
        ProceduralModelFiles with the three paths.
    """
    folder = Path(directory)
    body = procedural_body_model()
    files = ProceduralModelFiles(
        model=folder / "SMPL_NEUTRAL.pkl",
        extra_regressor=folder / "SMPL_to_J19.pkl",
        h36m_regressor=folder / "J_regressor_h36m.npy",
    )
    write_smpl_model_pickle(body.model, files.model)
    write_joint_regressor(files.extra_regressor, body.extra_regressor)
    write_joint_regressor(files.h36m_regressor, body.h36m_regressor)
    return files
