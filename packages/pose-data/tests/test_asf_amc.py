import math
from pathlib import Path

import numpy as np
import pytest

from pose_data.asf_amc import read_amc, read_asf
from pose_data.mocap_skeleton import CMU_UNIT_TO_METRES, subsample_clip

CLIPS = [
    ("backflip", "backflip", 247),
    ("charleston", "charleston1", 506),
    ("lambada", "lambada", 2180),
]

ASF = """# tiny test skeleton
:version 1.10
:name TEST
:units
  mass 1.0
  length 0.45
  angle deg
:documentation
   made by the test
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name upper
     direction 0 1 0
     length 10
     axis 0 0 0  XYZ
    dof rx ry rz
    limits (-180.0 180.0)
           (-180.0 180.0)
           (-180.0 180.0)
  end
  begin
     id 2
     name lower
     direction 1 0 0
     length 5
     axis 0 0 90  XYZ
    dof rx
    limits (-180.0 180.0)
  end
  begin
     id 3
     name side
     direction 0 0 1
     length 2
     axis 0 0 0  XYZ
  end
:hierarchy
  begin
    root upper side
    upper lower
  end
"""


def _amc(frames: list[dict[str, str]]) -> str:
    lines = ["#!OML:ASF test", ":FULLY-SPECIFIED", ":DEGREES"]
    for number, frame in enumerate(frames, start=1):
        lines.append(str(number))
        lines += [f"{bone} {values}" for bone, values in frame.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    asf = tmp_path / "tiny.asf"
    asf.write_text(ASF)
    amc = tmp_path / "tiny.amc"
    amc.write_text(
        _amc(
            [
                {"root": "0 0 0 0 0 0", "upper": "0 0 0", "lower": "0"},
                {"root": "1 2 3 0 0 0", "upper": "90 0 0", "lower": "90"},
                {"root": "0 0 0 0 90 0", "upper": "0 0 0", "lower": "0"},
            ]
        )
    )
    return asf, amc


def test_tiny_skeleton_joints_and_units(tiny):
    skeleton = read_asf(tiny[0])
    assert skeleton.length_unit == 0.45 and skeleton.angle_unit == "deg"
    assert skeleton.metres_per_unit == pytest.approx(CMU_UNIT_TO_METRES)
    clip = read_amc(tiny[1], skeleton)
    assert clip.joint_names == ("root", "upper", "lower", "lower_end", "side", "side_end")
    assert clip.parents == (-1, 0, 1, 2, 0, 4)
    s = CMU_UNIT_TO_METRES
    np.testing.assert_allclose(clip.offsets[2], [0, 10 * s, 0])  # the knee: end of "upper"
    np.testing.assert_allclose(clip.offsets[3], [5 * s, 0, 0])
    # Rest frame: bones along their directions.
    np.testing.assert_allclose(clip.positions[0, 3], [5 * s, 10 * s, 0], atol=1e-12)
    np.testing.assert_allclose(clip.positions[0, 5], [0, 0, 2 * s], atol=1e-12)
    assert clip.fps == 120.0 and clip.num_frames == 3


def test_amc_rotations_follow_c_m_c_inverse(tiny):
    clip = read_amc(tiny[1], read_asf(tiny[0]))
    s = CMU_UNIT_TO_METRES
    root = np.array([1, 2, 3]) * s
    # Frame 2: upper rotates 90 deg about x: (0, 10, 0) -> (0, 0, 10).
    np.testing.assert_allclose(clip.positions[1, 2], root + np.array([0, 0, 10 * s]), atol=1e-12)
    # lower: axis (0, 0, 90) makes its local x the world y, so "rx 90" turns about world y
    # (after the parent's x rotation, world y became z): (5, 0, 0) -> Rx(90) Ry(90) (5, 0, 0).
    expected_lower = np.array([0.0, 5.0, 0.0]) * s  # Ry(90) (5,0,0) = (0,0,-5); Rx(90) -> (0,5,0)
    np.testing.assert_allclose(
        clip.positions[1, 3] - clip.positions[1, 2], expected_lower, atol=1e-12
    )
    # Frame 3: the root turns 90 deg about y; "side" (0, 0, 2) -> (2, 0, 0).
    np.testing.assert_allclose(clip.positions[2, 5], [2 * s, 0, 0], atol=1e-12)
    rotations = clip.global_rotations.reshape(-1, 3, 3)
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1),
        np.broadcast_to(np.eye(3), rotations.shape),
        atol=1e-12,
    )


def test_step_equals_subsampling(tiny):
    skeleton = read_asf(tiny[0])
    full = read_amc(tiny[1], skeleton)
    every_other = read_amc(tiny[1], skeleton, step=2)
    np.testing.assert_allclose(every_other.positions, subsample_clip(full, step=2).positions)
    assert every_other.fps == 60.0 and every_other.num_frames == 2


def test_amc_errors_name_file_frame_and_bone(tiny, tmp_path):
    skeleton = read_asf(tiny[0])
    bad = tmp_path / "missing.amc"
    bad.write_text(_amc([{"root": "0 0 0 0 0 0", "upper": "0 0 0"}]))
    with pytest.raises(ValueError, match=r"missing\.amc: frame 1 lacks bone\(s\) \['lower'\]"):
        read_amc(bad, skeleton)
    bad.write_text(_amc([{"root": "0 0 0 0 0 0", "upper": "0 0", "lower": "0"}]))
    with pytest.raises(ValueError, match=r"line 6: bone 'upper' expects 3 finite values"):
        read_amc(bad, skeleton)
    bad.write_text(_amc([{"root": "0 0 0 0 0 0", "upper": "0 0 0", "lower": "0", "foo": "1"}]))
    with pytest.raises(ValueError, match="unknown bone 'foo'"):
        read_amc(bad, skeleton)
    bad.write_text(_amc([{"root": "0 0 0 0 0 0", "upper": "0 nan 0", "lower": "0"}]))
    with pytest.raises(ValueError, match="finite"):
        read_amc(bad, skeleton)
    with pytest.raises(FileNotFoundError, match=r"nope\.amc"):
        read_amc(tmp_path / "nope.amc", skeleton)


def test_asf_errors_name_file_and_field(tmp_path):
    path = tmp_path / "bad.asf"
    path.write_text(ASF.replace("direction 0 1 0", "direction 0 x 0"))
    with pytest.raises(ValueError, match=r"bad\.asf, line \d+: field 'direction' expects 3"):
        read_asf(path)
    path.write_text(ASF.replace("upper lower", "upper elbow"))
    with pytest.raises(ValueError, match="unknown bone 'elbow'"):
        read_asf(path)
    path.write_text(ASF.replace("dof rx\n", "dof rx l\n"))
    with pytest.raises(ValueError, match=r"dof \['l'\] not supported"):
        read_asf(path)
    path.write_text(ASF.split(":hierarchy")[0])
    with pytest.raises(ValueError, match="missing section ':hierarchy'"):
        read_asf(path)


@pytest.fixture(scope="module")
def real_clips(assets):
    folder = assets / "cmu_mocap" / "asf_amc"
    return {
        amc: read_amc(folder / f"{amc}.amc", read_asf(folder / f"{asf}.asf"))
        for asf, amc, _ in CLIPS
    }


@pytest.mark.parametrize(("amc", "num_frames"), [(amc, n) for _, amc, n in CLIPS])
def test_real_cmu_clips_have_plausible_metric_skeletons(real_clips, amc, num_frames):
    clip = real_clips[amc]
    assert clip.num_frames == num_frames and clip.fps == 120.0
    assert np.all(np.isfinite(clip.positions))
    for side in "lr":
        hip, knee, ankle = (clip.joint_index(f"{side}{b}") for b in ("femur", "tibia", "foot"))
        femur = np.linalg.norm(clip.positions[:, knee] - clip.positions[:, hip], axis=-1)
        tibia = np.linalg.norm(clip.positions[:, ankle] - clip.positions[:, knee], axis=-1)
        assert 0.35 < femur.mean() < 0.55 and femur.std() < 1e-9  # rigid bones
        assert 0.3 < tibia.mean() < 0.5
    # Bones are rigid in every frame: |p[j] - p[parent]| = |offset[j]|.
    parents = np.array(clip.parents[1:])
    lengths = np.linalg.norm(clip.positions[:, 1:] - clip.positions[:, parents], axis=-1)
    expected = np.broadcast_to(np.linalg.norm(clip.offsets[1:], axis=-1), lengths.shape)
    np.testing.assert_allclose(lengths, expected, atol=1e-9)
    rotations = clip.global_rotations[::50].reshape(-1, 3, 3)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)


@pytest.mark.parametrize("amc", ["charleston1", "lambada"])
def test_real_dances_keep_the_feet_on_the_floor(real_clips, amc):
    # A wrong rotation convention makes the lowest point wander; y is up in CMU files.
    clip = real_clips[amc]
    lowest = clip.positions[..., 1].min(axis=1)
    assert lowest.min() > -0.05 and lowest.max() < 0.1
    head = clip.positions[:, clip.joint_index("head_end"), 1]
    assert np.all(head > 1.3) and math.isclose(clip.fps, 120.0)
