import pickle

import cv2
import numpy as np
import pytest
import torch

from pose_data.h36m_videopose3d import read_npz_object
from pose_data.lifting_cameras import look_at_camera
from pose_data.pw3d import COCO18_TO_BODY25, convert_3dpw, read_3dpw_sequence
from pose_geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

# COCO-18 keypoint -> the SMPL joint the synthetic 2D is projected from.
COCO18_FROM_SMPL = (15, 12, 17, 19, 21, 16, 18, 20, 2, 5, 8, 1, 4, 7, 15, 15, 15, 15)


def make_sequence(num_frames=4, seed=0, name="courtyard_rangeOfMotions_00"):
    rng = np.random.default_rng(seed)
    K = np.array([[1961.0, 0, 540.0], [0, 1969.0, 960.0], [0, 0, 1]])
    cam_poses = []
    for frame in range(num_frames):
        camera = look_at_camera(
            [0.3 * frame, 1.5, 4.0], [0, 1.0, 0], up=[0, -1, 0], focal_px=1, width=2, height=2
        )
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = camera.rotation, camera.translation
        cam_poses.append(pose)
    cam_poses = np.stack(cam_poses)
    poses, joints, poses2d = [], [], []
    for _ in range(2):
        joints_world = rng.normal(scale=0.3, size=(num_frames, 24, 3)) + np.array([0, 1.0, 0])
        camera_joints = (
            np.einsum("nij,nkj->nki", cam_poses[:, :3, :3], joints_world)
            + cam_poses[:, None, :3, 3]
        )
        pixels = camera_joints[..., :2] / camera_joints[..., 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
        keypoints = np.concatenate(
            [pixels[:, list(COCO18_FROM_SMPL)], np.ones((num_frames, 18, 1))], -1
        )
        poses2d.append(keypoints.transpose(0, 2, 1))  # (N, 3, 18) as in the files
        joints.append(joints_world.reshape(num_frames, 72))
        poses.append(rng.normal(scale=0.4, size=(num_frames, 72)))
    poses2d[1][1, 2, :] = 0  # actor 1, frame 1: no visible keypoint
    return {
        "sequence": name,
        "genders": ["m", "f"],
        "betas": [rng.normal(size=10), rng.normal(size=300)],
        "betas_clothed": [rng.normal(size=10)] * 2,
        "poses": poses,
        "trans": [rng.normal(size=(num_frames, 3)) for _ in range(2)],
        "poses2d": poses2d,
        "jointPositions": joints,
        "cam_poses": cam_poses,
        "cam_intrinsics": K,
        "campose_valid": [np.ones(num_frames, bool), np.arange(num_frames) != 2],
        "img_frame_ids": np.arange(num_frames),
        "texture": None,
    }


def write(tmp_path, data, name="seq.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(data, protocol=2))  # as old as the original files allow
    return path


def test_read_sequence_validates_fields(tmp_path):
    data = make_sequence()
    sequence = read_3dpw_sequence(write(tmp_path, data))
    assert sequence.num_people == 2 and sequence.num_frames == 4
    assert sequence.keypoints_2d.shape == (2, 4, 18, 3) and sequence.betas.shape == (2, 10)
    del data["cam_poses"]
    with pytest.raises(ValueError, match=r"seq\.pkl: field 'cam_poses' is missing"):
        read_3dpw_sequence(write(tmp_path, data))
    data = make_sequence()
    data["poses"][1] = data["poses"][1][:, :69]
    with pytest.raises(
        ValueError, match=r"field 'poses'\[1\] must have shape \(4, 72\), got \(4, 69\)"
    ):
        read_3dpw_sequence(write(tmp_path, data))


def test_convert_rotates_orientation_and_projects_consistently(tmp_path):
    data = make_sequence()
    folder = tmp_path / "sequenceFiles" / "test"
    folder.mkdir(parents=True)
    write(folder, data, "a.pkl")
    calls = []

    def smpl_keypoints(global_orient, body_pose, betas, gender):
        calls.append((gender, global_orient.shape, body_pose.shape, betas.shape))
        return np.full((len(global_orient), 44, 3), 1.0 if gender == "m" else 2.0)

    report = convert_3dpw(folder, tmp_path / "3dpw_test.npz", smpl_keypoints=smpl_keypoints)
    assert report.num_rows == 4 + 2 and len(report.problems) == 1
    assert "field 'poses2d'[1]: 1 valid frame(s) without any 2D keypoint" in report.problems[0]
    assert calls == [("m", (4, 3), (4, 69), (4, 10)), ("f", (2, 3), (2, 69), (2, 10))]
    out = np.load(report.output)
    assert list(out["imgname"][4:]) == [
        f"imageFiles/courtyard_rangeOfMotions_00/image_{i:05d}.jpg" for i in (0, 3)
    ]
    assert list(out["gender"]) == ["m"] * 4 + ["f"] * 2
    np.testing.assert_allclose(out["extra_keypoints_3d"][4:, :, :3], 2.0)
    assert np.all(out["has_body_pose"] == 1) and np.all(out["has_betas"] == 1)
    # Global orientation in the camera: R_cam @ R_world; body joints unchanged.
    row, frame = 5, 3
    expected = rotmat_to_axis_angle(
        torch.from_numpy(data["cam_poses"][frame, :3, :3])
        @ axis_angle_to_rotmat(torch.from_numpy(data["poses"][1][frame, :3]))
    ).numpy()
    np.testing.assert_allclose(out["body_pose"][row, :3], expected, atol=1e-9)
    np.testing.assert_allclose(out["body_pose"][row, 3:], data["poses"][1][frame, 3:])
    np.testing.assert_allclose(out["betas"][row], data["betas"][1][:10])
    # Converted camera-axis joints projected with the converted intrinsics land on the 2D.
    for r in range(report.num_rows):
        joints = out["smpl_joints_3d"][r]
        pixels = joints[:, :2] / joints[:, 2:] * out["focal_px"][r] + out["center_px"][r]
        np.testing.assert_allclose(
            out["body_keypoints_2d"][r, list(COCO18_TO_BODY25), :2],
            pixels[list(COCO18_FROM_SMPL)],
            atol=1e-6,
        )
    assert np.all(out["body_keypoints_2d"][:, [8, *range(19, 25)]] == 0)
    # Box: 1.2 x the extent of the visible keypoints.
    xy = out["body_keypoints_2d"][0][out["body_keypoints_2d"][0, :, 2] > 0, :2]
    np.testing.assert_allclose(out["scale"][0], 1.2 * (xy.max(0) - xy.min(0)).max())


def test_bad_files_are_skipped_or_raised(tmp_path):
    good = write(tmp_path, make_sequence(), "good.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"bad\.pkl"):
        convert_3dpw([good, bad], tmp_path / "x.npz")
    report = convert_3dpw([good, bad], tmp_path / "x.npz", on_error="skip")
    assert report.num_rows == 6 and any("bad.pkl" in p for p in report.problems)
    assert "extra_keypoints_3d" not in np.load(report.output).files  # no SMPL model given


def test_real_3dpw_record_and_frame(shared_data, tmp_path):
    """The real record's SMPL parameters, converted through the original pickle layout."""
    record = shared_data / "3dpw" / "sample_3dpw_train_humandata.npz"
    smpl = read_npz_object(record, "smpl")
    image_path = str(np.load(record)["image_path"][0])
    gender = str(read_npz_object(record, "meta")["gender"][0])
    frame = int(image_path.rsplit("_", 1)[1][:-4])
    data = make_sequence(num_frames=frame + 1)
    pose = np.concatenate(
        [
            np.asarray(smpl["global_orient"], float).reshape(3),
            np.asarray(smpl["body_pose"], float).reshape(69),
        ]
    )
    data["poses"][0][frame] = pose
    data["betas"][0] = np.asarray(smpl["betas"], float).reshape(10)
    data["genders"][0] = gender
    data["cam_poses"][frame] = np.eye(4)  # the record's orientation is already in the camera
    data["poses2d"][0][frame][:2] = (
        np.abs(data["poses2d"][0][frame][:2]) % 1000
    )  # keep a finite box
    report = convert_3dpw([write(tmp_path, data)], tmp_path / "out.npz")
    out = np.load(report.output)
    row = list(out["imgname"]).index(image_path)
    assert out["gender"][row] == "f"
    np.testing.assert_allclose(out["body_pose"][row], pose, atol=1e-7)
    image = cv2.imread(str(shared_data / "3dpw" / out["imgname"][row]))
    assert image is not None and image.shape[:2] == (1920, 1080)
