import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from cdflib.cdfwrite import CDF as CDF_WRITER

from pose_data.h36m import (
    convert_h36m,
    find_h36m_sequences,
    group_h36m_multiview,
    parse_h36m_imgname,
    read_h36m_cameras,
    read_h36m_cdf,
)
from pose_data.h36m_layout import H36M17_FROM_32, H36M17_TO_44
from pose_data.lifting_cameras import look_at_camera
from pose_data.multiview import read_multiview_pickle
from pose_geometry import H36M32_TO_44

CAMERAS = ("54138969", "60457274")


def write_cdf(path: Path, poses: np.ndarray) -> None:
    """A CDF with the 'Pose' variable as Human3.6M stores it: (1, T, D) float32."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    writer = CDF_WRITER(str(path))
    data = poses.reshape(1, poses.shape[0], -1).astype(np.float32)
    spec = {
        "Variable": "Pose",
        "Data_Type": CDF_WRITER.CDF_FLOAT,
        "Num_Elements": 1,
        "Rec_Vary": True,
        "Dim_Sizes": list(data.shape[1:]),
    }
    writer.write_var(spec, var_data=data)
    writer.close()


def write_video(path: Path, num_frames: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 50, (64, 48))
    for index in range(num_frames):
        writer.write(np.full((48, 64, 3), 20 * index, np.uint8))
    writer.release()


def synthetic_cameras():
    cameras = {}
    for index, camera_id in enumerate(CAMERAS):
        angle = 0.7 + 1.9 * index
        camera = look_at_camera(
            [4.5 * np.cos(angle), 4.5 * np.sin(angle), 1.6], [0, 0, 1.0], up=[0, 0, 1],
            focal_px=1145.0, width=1000, height=1000, name=camera_id,
        )  # fmt: skip
        cameras[("S9", camera_id)] = type(camera)(
            rotation=camera.rotation, translation=camera.translation, focal_px=camera.focal_px,
            center_px=camera.center_px, width=1000, height=1000, radial=[-0.2, 0.24, -0.003],
            tangential=[-0.0014, -0.001], name=camera_id,
        )  # fmt: skip
    return cameras


def make_dataset(root: Path, num_frames: int = 12, *, with_videos: bool = True):
    rng = np.random.default_rng(0)
    cameras = synthetic_cameras()
    world = {}
    for action in ("Directions 1", "Walking", "_ALL 1"):
        base = rng.normal(scale=0.3, size=(1, 32, 3)) + np.array([0, 0, 1.0])
        motion = base + 0.01 * np.arange(num_frames)[:, None, None]
        motion[:, 11] = motion[:, 0]  # H36M: joints 0 and 11 coincide
        world[action] = motion
        for camera_id in CAMERAS:
            camera = cameras[("S9", camera_id)]
            stem = f"{action}.{camera_id}"
            write_cdf(
                root / "S9/MyPoseFeatures/D3_Positions_mono" / f"{stem}.cdf",
                camera.world_to_camera(motion) * 1000,
            )
            write_cdf(
                root / "S9/MyPoseFeatures/D2_Positions" / f"{stem}.cdf", camera.project(motion)
            )
            if with_videos:
                write_video(root / "S9/Videos" / f"{stem}.mp4", num_frames)
    return cameras, world


def test_find_sequences_skips_all_and_filters_cameras(tmp_path):
    make_dataset(tmp_path, num_frames=2, with_videos=False)
    sequences = find_h36m_sequences(tmp_path, subjects=["S9"], cameras=["60457274"])
    assert [(s.action, s.camera) for s in sequences] == [
        ("Directions_1", "60457274"),
        ("Walking", "60457274"),
    ]
    assert sequences[0].poses_2d.name == "Directions 1.60457274.cdf"
    with pytest.raises(FileNotFoundError, match="S1/MyPoseFeatures/D3_Positions_mono"):
        find_h36m_sequences(tmp_path, subjects=["S1"])
    with pytest.raises(ValueError, match="unknown camera id"):
        find_h36m_sequences(tmp_path, subjects=["S9"], cameras=["123"])


def test_read_cdf_checks_shape(tmp_path):
    write_cdf(tmp_path / "a.cdf", np.zeros((3, 32, 3)))
    assert read_h36m_cdf(tmp_path / "a.cdf", dims=3).shape == (3, 32, 3)
    with pytest.raises(ValueError, match=r"a\.cdf: field 'Pose' must have shape \(1, T, 64\)"):
        read_h36m_cdf(tmp_path / "a.cdf", dims=2)


def test_convert_projects_consistently_and_extracts_the_right_frames(tmp_path):
    cameras, world = make_dataset(tmp_path / "h36m")
    report = convert_h36m(
        tmp_path / "h36m", tmp_path / "out" / "val.npz", subjects=["S9"], step=5,
        image_root=tmp_path / "images", camera_parameters=cameras,
    )  # fmt: skip
    assert report.num_rows == 2 * 2 * 3 and report.problems == ()
    data = np.load(report.output)
    assert data["imgname"][0] == "images/S9_Directions_1.54138969_000001.jpg"
    np.testing.assert_array_equal(data["frame"][:3], [0, 5, 10])
    # Root-centred 3D, pelvis stored; confidences 1 on the 17 mapped slots only.
    extra_3d, extra_2d = data["extra_keypoints_3d"], data["extra_keypoints_2d"]
    targets = [t - 25 for _, t in H36M32_TO_44]
    np.testing.assert_allclose(extra_3d[:, 14, :3], 0.0, atol=1e-12)
    assert np.all(extra_3d[:, targets, 3] == 1) and np.all(extra_3d[:, [13, 15], 3] == 0)
    row = 1  # Directions 1, camera 54138969, frame 5
    camera = cameras[("S9", "54138969")]
    expected = camera.world_to_camera(world["Directions 1"][5])
    np.testing.assert_allclose(data["pelvis_3d"][row], expected[11], atol=1e-5)
    # Projecting the converted 3D with the converted camera lands on the converted 2D.
    from pose_data.lifting_cameras import PinholeCamera

    for r in range(report.num_rows):
        converted = PinholeCamera(
            rotation=np.eye(3), translation=np.zeros(3), focal_px=data["focal_px"][r],
            center_px=data["center_px"][r], radial=data["radial"][r], tangential=data["tangential"][r],
        )  # fmt: skip
        points = extra_3d[r, targets, :3] + data["pelvis_3d"][r]
        np.testing.assert_allclose(
            converted.project_camera_points(points), extra_2d[r, targets, :2], atol=1e-3
        )
    # Boxes: side 1.2 x the extent of the 17 mapped joints.
    xy = extra_2d[row, targets, :2]
    np.testing.assert_allclose(data["scale"][row], 1.2 * (xy.max(0) - xy.min(0)).max())
    np.testing.assert_allclose(data["center"][row], (xy.max(0) + xy.min(0)) / 2)
    # Image of pose frame 5 is video frame 5 (ProHMR's script wrote frame 6).
    image = cv2.imread(str(tmp_path / "images" / data["imgname"][row]))
    assert abs(image.mean() - 100) < 8


def test_multiview_grouping_keeps_every_frame_with_3d(tmp_path):
    make_dataset(tmp_path / "h36m", num_frames=11, with_videos=False)
    report = convert_h36m(tmp_path / "h36m", tmp_path / "val.npz", subjects=["S9"], step=5)
    grouped = group_h36m_multiview(report.output, tmp_path / "multiview.pkl")
    assert grouped.num_rows == 2 * 3 and grouped.problems == ()
    frames = read_multiview_pickle(grouped.output)
    assert len(frames) == 6
    first = frames[0]
    assert list(first["imgname"]) == [
        "images/S9_Directions_1.54138969_000001.jpg", "images/S9_Directions_1.60457274_000001.jpg",
    ]  # fmt: skip
    assert first["keypoints_3d"].shape == (2, 44, 4)
    assert np.all(first["keypoints_3d"][:, 25 + 0, 3] == 1)  # extra 3D reached the reader
    # Instants seen once are left out and reported.
    p2 = convert_h36m(
        tmp_path / "h36m", tmp_path / "p2.npz", subjects=["S9"], cameras=["60457274"], step=5
    )
    lone = group_h36m_multiview(p2.output, tmp_path / "lone.pkl", min_views=2)
    assert lone.num_rows == 0 and "6 instant(s) with fewer than 2 views" in lone.problems[0]


def test_bad_files_are_reported_per_file(tmp_path):
    make_dataset(tmp_path / "h36m", num_frames=6, with_videos=False)
    bad = tmp_path / "h36m/S9/MyPoseFeatures/D2_Positions/Walking.60457274.cdf"
    write_cdf(bad, np.zeros((5, 32, 2)))
    with pytest.raises(
        ValueError, match=r"Walking\.60457274\.cdf: 5 frames but .*Walking\.60457274\.cdf has 6"
    ):
        convert_h36m(tmp_path / "h36m", tmp_path / "a.npz", subjects=["S9"])
    assert not (tmp_path / "a.npz").exists()
    report = convert_h36m(tmp_path / "h36m", tmp_path / "a.npz", subjects=["S9"], on_error="skip")
    assert (
        report.num_rows == 3 * 2
        and len(report.problems) == 1
        and "Walking.60457274" in report.problems[0]
    )
    with pytest.raises(FileNotFoundError, match=r"Videos/Directions 1\.54138969\.mp4"):
        convert_h36m(
            tmp_path / "h36m", tmp_path / "b.npz", subjects=["S9"], image_root=tmp_path / "img"
        )


@pytest.mark.skipif(importlib.util.find_spec("h5py") is not None, reason="h5py installed")
def test_mask_boxes_need_h5py(tmp_path):
    make_dataset(tmp_path / "h36m", num_frames=2, with_videos=False)
    (tmp_path / "h36m/S9/MySegmentsMat/ground_truth_bb").mkdir(parents=True)
    for path in (tmp_path / "h36m/S9/MyPoseFeatures/D3_Positions_mono").glob("*.cdf"):
        (
            tmp_path / "h36m/S9/MySegmentsMat/ground_truth_bb" / path.with_suffix(".mat").name
        ).write_bytes(b"x")
    with pytest.raises(ImportError, match="needs h5py"):
        convert_h36m(tmp_path / "h36m", tmp_path / "m.npz", subjects=["S9"], box_source="masks")


def test_parse_imgname():
    assert parse_h36m_imgname("images/S9_Sitting_Down_2.60457274_000011.jpg") == (
        "S9",
        "Sitting_Down_2",
        "60457274",
        10,
    )
    assert (
        parse_h36m_imgname("S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg")[3]
        == 0
    )
    with pytest.raises(ValueError, match="does not look like"):
        parse_h36m_imgname("foo.jpg")


# --- real samples -------------------------------------------------------------------------


def test_real_cameras_reproduce_the_real_2d_joints(shared_data):
    cameras = read_h36m_cameras(shared_data / "h36m" / "cameras.pkl")
    assert len(cameras) == 44 and cameras[("S1", "54138969")].width == 1000
    data = np.load(shared_data / "h36m" / "test_h36m_body3d.npz")
    for name, joints_3d, joints_2d in zip(data["imgname"], data["S"], data["part"], strict=True):
        subject, sequence, _ = str(name).split("/")
        camera = cameras[(subject, sequence.split(".")[1])]
        projected = camera.project_camera_points(joints_3d[:, :3])
        np.testing.assert_allclose(projected, joints_2d[:, :2], atol=1e-3)  # with distortion
    for camera in cameras.values():  # every camera looks at the capture volume (world origin)
        axis = camera.rotation[2]
        assert axis @ (-camera.position) / np.linalg.norm(camera.position) > 0.9


def test_real_h36m17_and_spin_layouts_agree(shared_data):
    mmpose = np.load(shared_data / "h36m" / "test_h36m_body3d.npz")["S"]
    spin = np.load(shared_data / "h36m" / "test_h36m.npz")["S"]
    extra = np.zeros((3, 19, 4))
    extra[:, [t - 25 for t in H36M17_TO_44]] = mmpose
    # Equal up to the float32 rounding of the two files (< 1e-6 m).
    np.testing.assert_allclose(extra[..., :3], spin[:, :19, :3] * (spin[:, :19, 3:] > 0), atol=1e-6)


def test_converter_reproduces_the_real_samples(shared_data, tmp_path):
    """CDFs built from the real 3 frames give the real boxes, names and images."""
    real = np.load(shared_data / "h36m" / "test_h36m_body3d.npz")
    spin = np.load(shared_data / "h36m" / "test_h36m.npz")
    expected = {}
    for index, name in enumerate(real["imgname"]):
        subject, folder, file = str(name).split("/")
        action, camera = folder.split("_", 1)[1].split(".")
        frame = int(file.rsplit("_", 1)[1][:-4]) - 1
        poses_3d = np.zeros((frame + 1, 32, 3))
        poses_2d = np.zeros((frame + 1, 32, 2))
        for k, source in enumerate(H36M17_FROM_32):
            poses_3d[frame, source] = real["S"][index, k, :3] * 1000
            poses_2d[frame, source] = real["part"][index, k, :2]
        poses_3d[frame, [11, 24]] = poses_3d[frame, [0, 13]]
        poses_2d[frame, [11, 24]] = poses_2d[frame, [0, 13]]
        stem = f"{action.replace('_', ' ')}.{camera}"
        write_cdf(tmp_path / subject / "MyPoseFeatures/D3_Positions_mono" / f"{stem}.cdf", poses_3d)
        write_cdf(tmp_path / subject / "MyPoseFeatures/D2_Positions" / f"{stem}.cdf", poses_2d)
        expected[str(name)] = index
    report = convert_h36m(
        tmp_path, tmp_path / "out.npz", subjects=["S1", "S5", "S7"], step=1,
        imgname_template="{subject}/{subject}_{action}.{camera}/{subject}_{action}.{camera}_{frame:06d}.jpg",
    )  # fmt: skip
    data = np.load(report.output)
    names = list(data["imgname"])
    for name, index in expected.items():
        row = names.index(name)
        np.testing.assert_allclose(data["center"][row], spin["center"][index], atol=1e-4)
        np.testing.assert_allclose(data["scale"][row], spin["scale"][index] * 200, rtol=1e-6)
        np.testing.assert_allclose(
            data["extra_keypoints_3d"][row, :, :3],
            (spin["S"][index, :19, :3] - spin["S"][index, 14, :3])
            * (spin["S"][index, :19, 3:] > 0),
            atol=1e-6,
        )
        image = cv2.imread(str(shared_data / "h36m" / "images" / name))
        assert image is not None and image.shape[1] == 1000
