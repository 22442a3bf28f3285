import pickle

import numpy as np
import pytest
import torch

from pose_data.lifting_cameras import look_at_camera
from pose_data.mannequin import (
    convert_mannequin,
    group_mannequin_views,
    read_mannequin_annotations,
    read_mannequin_trajectory,
)
from pose_data.multiview import read_multiview_pickle
from pose_geometry import axis_angle_to_rotmat, rotmat_to_axis_angle


def write_trajectory(path, num_frames=4):
    lines = ["https://www.youtube.com/watch?v=example"]
    for frame in range(num_frames):
        camera = look_at_camera(
            [frame * 0.5, 0.0, -3.0], [0, 0, 0], up=[0, -1, 0], focal_px=1, width=1, height=1
        )
        pose = np.concatenate([camera.rotation, camera.translation[:, None]], axis=1)
        values = [1000 * frame, 0.9, 1.6, 0.5, 0.5, 0, 0, *pose.ravel()]
        lines.append(" ".join(f"{v:.9g}" for v in values))
    path.write_text("\n".join(lines) + "\n")


def records(num_frames=4, world=False):
    rng = np.random.default_rng(0)
    out = []
    for person in ("p0", "p1"):
        orient = rng.normal(size=3)
        body = rng.normal(scale=0.2, size=69)
        betas = rng.normal(size=10)
        for frame in range(num_frames if person == "p0" else 1):
            record = {
                "sequence": "seqA", "person": person, "frame": frame, "imgname": f"images/seqA/{frame:05d}.jpg",
                "center": [100.0 + frame, 200.0], "scale": 150.0, "betas": betas,
            }  # fmt: skip
            if world:
                record["body_pose"], record["global_orient_world"] = body, orient
            else:
                record["body_pose"] = np.concatenate([orient, body])
            out.append(record)
    return out


def test_trajectory_parsing(tmp_path):
    write_trajectory(tmp_path / "seqA.txt")
    trajectory = read_mannequin_trajectory(tmp_path / "seqA.txt")
    assert trajectory.url.startswith("https://") and trajectory.rotations.shape == (4, 3, 3)
    camera = trajectory.camera(2, width=1920, height=1080)
    np.testing.assert_allclose(camera.focal_px, [0.9 * 1920, 1.6 * 1080])
    np.testing.assert_allclose(camera.center_px, [960, 540])
    np.testing.assert_allclose(camera.project(np.zeros((1, 3))), [[960, 540]], atol=1e-6)
    (tmp_path / "bad.txt").write_text("url\n1 2 3\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 2: expected 19 finite numbers"):
        read_mannequin_trajectory(tmp_path / "bad.txt")


def test_grouping_makes_one_element_per_person_views(tmp_path):
    elements, problems = group_mannequin_views(records(), max_views=3)
    assert [len(e["imgname"]) for e in elements] == [3]  # p0: frames 0-2; frame 3 and p1 alone
    assert len(problems) == 2 and "person 'p1'" in problems[1]
    assert elements[0]["body_pose"].shape == (3, 72) and np.all(elements[0]["has_betas"] == 1)


def test_world_orientation_is_rotated_into_each_camera(tmp_path):
    write_trajectory(tmp_path / "seqA.txt")
    trajectory = read_mannequin_trajectory(tmp_path / "seqA.txt")
    data = records(world=True)
    elements, _ = group_mannequin_views(data, trajectories={"seqA": trajectory})
    element = elements[0]
    for view in range(4):
        R = torch.from_numpy(trajectory.rotations[view]) @ axis_angle_to_rotmat(
            torch.from_numpy(np.asarray(data[0]["global_orient_world"]))
        )
        np.testing.assert_allclose(
            element["body_pose"][view, :3], rotmat_to_axis_angle(R).numpy(), atol=1e-9
        )
        np.testing.assert_allclose(element["body_pose"][view, 3:], data[0]["body_pose"])
    with pytest.raises(ValueError, match="no trajectory was provided"):
        group_mannequin_views(data)


def test_convert_end_to_end_and_errors(tmp_path):
    write_trajectory(tmp_path / "seqA.txt")
    (tmp_path / "annotations.pkl").write_bytes(pickle.dumps(records(world=True), protocol=2))
    report = convert_mannequin(
        tmp_path / "annotations.pkl", tmp_path / "mannequin.pkl", trajectory_dir=tmp_path
    )
    assert report.num_rows == 1 and len(report.problems) == 1
    frames = read_multiview_pickle(report.output)
    assert (
        frames[0]["body_pose"].shape == (4, 72)
        and str(frames[0]["imgname"][0]) == "images/seqA/00000.jpg"
    )
    bad = records()
    del bad[2]["betas"]
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match=r"bad\.pkl: record 2: field\(s\) \['betas'\] missing"):
        read_mannequin_annotations(tmp_path / "bad.pkl")
    bad = records()
    bad[0]["body_pose"] = np.zeros(50)
    with pytest.raises(ValueError, match="record 0: field 'body_pose' must have 72"):
        group_mannequin_views(bad)
