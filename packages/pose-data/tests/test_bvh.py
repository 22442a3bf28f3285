import math
from pathlib import Path

import numpy as np
import pytest

from pose_data.bvh import read_bvh
from pose_data.mocap_skeleton import CMU_UNIT_TO_METRES, euler_to_rotmat

BVH = """HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Knee
\t{
\t\tOFFSET 0 -2 0
\t\tCHANNELS 3 Zrotation Yrotation Xrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 -3 0
\t\t}
\t}
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 1 0 0 0 0 0 0 0
5 1 0 90 0 0 0 0 0
0 0 0 10 20 30 0 0 90
"""


def _write(tmp_path: Path, text: str = BVH) -> Path:
    path = tmp_path / "tiny.bvh"
    path.write_text(text)
    return path


def test_tiny_bvh_hierarchy_and_units(tmp_path):
    clip = read_bvh(_write(tmp_path), unit_scale=0.01)
    assert clip.joint_names == ("Hips", "Knee", "Knee_End")
    assert clip.parents == (-1, 0, 1)
    assert clip.fps == 30.0 and clip.num_frames == 3
    np.testing.assert_allclose(clip.offsets, [[0, 0, 0], [0, -0.02, 0], [0, -0.03, 0]])
    np.testing.assert_allclose(
        clip.positions[0], [[0, 0.01, 0], [0, -0.01, 0], [0, -0.04, 0]], atol=1e-12
    )


def test_bvh_rotations_compose_in_listed_order(tmp_path):
    clip = read_bvh(_write(tmp_path), unit_scale=1.0)
    # Frame 2: the root turns 90 degrees about z: (0, -2, 0) -> (2, 0, 0).
    np.testing.assert_allclose(clip.positions[1, 1] - clip.positions[1, 0], [2, 0, 0], atol=1e-12)
    # Frame 3: root channels Z X Y = (10, 20, 30) -> L = Rz Rx Ry (first listed outermost).
    expected = euler_to_rotmat(np.radians([[30.0, 20.0, 10.0]]), "YXZ")[0]
    rz, rx, ry = (
        euler_to_rotmat(np.radians([[a]]), axis)[0] for a, axis in ((10, "Z"), (20, "X"), (30, "Y"))
    )
    np.testing.assert_allclose(expected, rz @ rx @ ry, atol=1e-12)
    np.testing.assert_allclose(clip.local_rotations[2, 0], expected, atol=1e-12)
    # The knee's Xrotation 90 then moves the end site: global = root @ Rx(90).
    end = clip.positions[2, 2] - clip.positions[2, 1]
    np.testing.assert_allclose(
        end, expected @ euler_to_rotmat(np.radians([[90.0]]), "X")[0] @ [0, -3, 0], atol=1e-12
    )


def test_bvh_step_and_errors(tmp_path):
    clip = read_bvh(_write(tmp_path), unit_scale=1.0, step=2)
    assert clip.num_frames == 2 and clip.fps == 15.0
    with pytest.raises(
        ValueError, match=r"tiny\.bvh, line 19: frame row expects 9 finite values, got 8"
    ):
        read_bvh(
            _write(tmp_path, BVH.replace("0 1 0 0 0 0 0 0 0", "0 1 0 0 0 0 0 0")), unit_scale=1.0
        )
    with pytest.raises(ValueError, match="'Frames: 4' but 3 frame rows"):
        read_bvh(_write(tmp_path, BVH.replace("Frames: 3", "Frames: 4")), unit_scale=1.0)
    with pytest.raises(ValueError, match=r"line 9: unknown channel\(s\) \['WROTATION'\]"):
        read_bvh(
            _write(tmp_path, BVH.replace("Yrotation Xrotation", "Yrotation Wrotation")),
            unit_scale=1.0,
        )
    with pytest.raises(ValueError, match="unit_scale"):
        read_bvh(_write(tmp_path), unit_scale=0)
    with pytest.raises(FileNotFoundError, match=r"missing\.bvh"):
        read_bvh(tmp_path / "missing.bvh", unit_scale=1.0)


@pytest.fixture(scope="module")
def real_bvh(assets):
    folder = assets / "cmu_mocap" / "bvh"
    return {
        name: read_bvh(folder / f"{name}.bvh", unit_scale=CMU_UNIT_TO_METRES)
        for name in ("131_01", "131_02")
    }


def test_real_cmu_bvh_in_metres(real_bvh):
    clip = real_bvh["131_01"]
    assert clip.num_frames == 994 and clip.fps == 120.0
    assert real_bvh["131_02"].num_frames == 1247
    # bvh11's metre copy (resources/scaled_131_01.bvh, scaled by the rounded factor 0.056444)
    # starts at 0.295202 0.953915 -1.913373 and has the LeftKnee offset 0.140731 -0.386656 0.
    np.testing.assert_allclose(clip.root_translation[0], [0.295202, 0.953915, -1.913373], rtol=2e-5)
    np.testing.assert_allclose(
        clip.offsets[clip.joint_index("LeftKnee")], [0.140731, -0.386656, 0.0], rtol=2e-5
    )
    for name, current in real_bvh.items():
        for side in ("Left", "Right"):
            hip, knee = current.joint_index(f"{side}Hip"), current.joint_index(f"{side}Knee")
            femur = np.linalg.norm(current.positions[:, knee] - current.positions[:, hip], axis=-1)
            assert 0.35 < femur.mean() < 0.55, name
        lowest = current.positions[..., 1].min(axis=1)  # walking: feet on the floor (y up)
        assert lowest.min() > -0.08 and lowest.max() < 0.1, name
        assert math.isclose(current.fps, 120.0)
