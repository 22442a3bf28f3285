import importlib.util

import cv2
import numpy as np
import pytest
import scipy.io

from pose_data.lifting_cameras import PinholeCamera, look_at_camera
from pose_data.mpi_inf import (
    MPI_INF17_FROM_28,
    MPI_INF17_NAMES,
    MPI_INF17_TO_44,
    convert_mpi_inf_test,
    convert_mpi_inf_train,
    read_mpi_inf_calibration,
    read_mpi_inf_cameras_pickle,
    read_mpi_inf_test_annotations,
)

_EXTRA = [i - 25 for i in MPI_INF17_TO_44]


def write_calibration(path, cameras):
    lines = ["Skeletool Camera Calibration File V1.0"]
    for index, camera in enumerate(cameras):
        intrinsic = np.eye(4)
        intrinsic[0, 0], intrinsic[1, 1] = camera.focal_px
        intrinsic[:2, 2] = camera.center_px
        extrinsic = np.eye(4)
        extrinsic[:3, :3], extrinsic[:3, 3] = camera.rotation, camera.translation * 1000
        lines += [
            f"name          {index}", "  sensor      10 10", "  size        2048 2048", "  animated    0",
            "  intrinsic   " + " ".join(f"{v:.10g}" for v in intrinsic.ravel()),
            "  extrinsic   " + " ".join(f"{v:.10g}" for v in extrinsic.ravel()), "  radial      0",
        ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def write_annot(path, joints_2d, joints_3d, *, univ_scale=0.9):
    """annot.mat with one cell per camera: annot2 (N, 56), annot3 / univ_annot3 (N, 84) mm."""
    num_cameras, num_frames = len(joints_2d), joints_2d[0].shape[0]
    cells = {
        key: np.empty((num_cameras, 1), dtype=object) for key in ("annot2", "annot3", "univ_annot3")
    }
    for camera in range(num_cameras):
        cells["annot2"][camera, 0] = joints_2d[camera].reshape(num_frames, 56)
        cells["annot3"][camera, 0] = joints_3d[camera].reshape(num_frames, 84)
        cells["univ_annot3"][camera, 0] = joints_3d[camera].reshape(num_frames, 84) * univ_scale
    scipy.io.savemat(
        path,
        {
            **cells,
            "cameras": np.arange(num_cameras)[None],
            "frames": np.arange(num_frames)[:, None],
        },
    )


def synthetic_sequence(folder, num_frames=25, num_cameras=3, seed=0):
    rng = np.random.default_rng(seed)
    cameras = [
        look_at_camera(
            [3 * np.cos(a), -1.0, 3 * np.sin(a)],
            [0, 0, 0],
            up=[0, -1, 0],
            focal_px=1500,
            width=2048,
            height=2048,
        )
        for a in np.linspace(0, 2, num_cameras)
    ]
    world = rng.normal(scale=0.3, size=(num_frames, 28, 3))
    joints_2d, joints_3d = [], []
    for camera in cameras:
        joints_3d.append(camera.world_to_camera(world) * 1000)
        joints_2d.append(camera.project(world))
    if num_frames > 7 and num_cameras > 1:
        joints_2d[1][7, 3] = [-50, 100]  # a joint outside the image in camera 1, frame 7
    folder.mkdir(parents=True, exist_ok=True)
    write_annot(folder / "annot.mat", joints_2d, joints_3d)
    write_calibration(folder / "camera.calibration", cameras)
    return cameras, joints_2d, joints_3d


def test_calibration_round_trip(tmp_path):
    cameras, _, _ = synthetic_sequence(tmp_path, num_frames=2)
    parsed = read_mpi_inf_calibration(tmp_path / "camera.calibration")
    assert sorted(parsed) == [0, 1, 2] and parsed[1].width == 2048
    np.testing.assert_allclose(parsed[1].rotation, cameras[1].rotation, atol=1e-9)
    np.testing.assert_allclose(parsed[1].translation, cameras[1].translation, atol=1e-9)
    text = (tmp_path / "camera.calibration").read_text().replace("  intrinsic", "  intrinsix", 1)
    (tmp_path / "camera.calibration").write_text(text)
    with pytest.raises(
        ValueError, match=r"camera\.calibration: camera '0' lacks field 'intrinsic'"
    ):
        read_mpi_inf_calibration(tmp_path / "camera.calibration")


def test_convert_train_selects_frames_and_projects(tmp_path):
    root = tmp_path / "mpi"
    _, joints_2d, joints_3d = synthetic_sequence(root / "S1" / "Seq2")
    report = convert_mpi_inf_train(
        root,
        tmp_path / "train.npz",
        annot3_key="annot3",
        subjects=[1],
        sequences=[2],
        cameras=[0, 1],
        step=7,
    )
    data = np.load(report.output)
    # Frames 0, 7, 14, 21 per camera; camera 1 frame 7 has a joint outside the image.
    assert report.num_rows == 4 + 3
    assert list(data["frame"]) == [0, 7, 14, 21, 0, 14, 21]
    assert data["imgname"][1] == "S1/Seq2/imageFrames/video_0/frame_000008.jpg"
    row = 1
    np.testing.assert_allclose(
        data["extra_keypoints_2d"][row, _EXTRA, :2], joints_2d[0][7][list(MPI_INF17_FROM_28)]
    )
    pelvis = joints_3d[0][7][4] / 1000
    np.testing.assert_allclose(data["pelvis_3d"][row], pelvis)
    np.testing.assert_allclose(
        data["extra_keypoints_3d"][row, _EXTRA, :3],
        joints_3d[0][7][list(MPI_INF17_FROM_28)] / 1000 - pelvis,
    )
    assert np.all(data["extra_keypoints_3d"][:, [15, 18], 3] == 0)
    for r in range(report.num_rows):
        camera = PinholeCamera(
            rotation=np.eye(3),
            translation=np.zeros(3),
            focal_px=data["focal_px"][r],
            center_px=data["center_px"][r],
        )
        projected = camera.project_camera_points(
            data["extra_keypoints_3d"][r, _EXTRA, :3] + data["pelvis_3d"][r]
        )
        np.testing.assert_allclose(projected, data["extra_keypoints_2d"][r, _EXTRA, :2], atol=1e-6)
    univ = convert_mpi_inf_train(
        root,
        tmp_path / "univ.npz",
        annot3_key="univ_annot3",
        subjects=[1],
        sequences=[2],
        cameras=[0],
        step=7,
    )
    np.testing.assert_allclose(np.load(univ.output)["pelvis_3d"][1], 0.9 * pelvis)


def test_train_errors_name_file_and_field(tmp_path):
    root = tmp_path / "mpi"
    synthetic_sequence(root / "S1" / "Seq1", num_frames=3)
    with pytest.raises(ValueError, match="`annot3_key` must be"):
        convert_mpi_inf_train(
            root, tmp_path / "x.npz", annot3_key="annot4", subjects=[1], sequences=[1]
        )
    with pytest.raises(FileNotFoundError, match=r"S2/Seq1/annot\.mat"):
        convert_mpi_inf_train(
            root,
            tmp_path / "x.npz",
            annot3_key="annot3",
            subjects=[1, 2],
            sequences=[1],
            cameras=[0],
        )
    report = convert_mpi_inf_train(
        root,
        tmp_path / "x.npz",
        annot3_key="annot3",
        subjects=[1, 2],
        sequences=[1],
        cameras=[0],
        on_error="skip",
    )
    assert report.num_rows == 1 and "S2/Seq1/annot.mat" in report.problems[0]
    with pytest.raises(
        ValueError, match=r"camera 5 missing from annot\.mat or camera\.calibration"
    ):
        convert_mpi_inf_train(
            root, tmp_path / "x.npz", annot3_key="annot3", subjects=[1], sequences=[1], cameras=[5]
        )
    data = scipy.io.loadmat(root / "S1" / "Seq1" / "annot.mat")
    data["annot2"][1, 0] = data["annot2"][1, 0][:, :50]
    scipy.io.savemat(
        root / "S1" / "Seq1" / "annot.mat",
        {k: v for k, v in data.items() if not k.startswith("__")},
    )
    with pytest.raises(
        ValueError, match=r"field 'annot2' camera 1 must have shape \(N, 56\), got \(3, 50\)"
    ):
        convert_mpi_inf_train(
            root, tmp_path / "x.npz", annot3_key="annot3", subjects=[1], sequences=[1], cameras=[0]
        )


def write_test_annot(path, joints_2d, joints_3d, valid):
    """annot_data.mat in MATLAB's (coords, 17, 1, N) order, as scipy writes a v5 file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    to_matlab = lambda x: x.transpose(2, 1, 0)[:, :, None, :]  # noqa: E731
    scipy.io.savemat(path, {
        "annot2": to_matlab(joints_2d), "annot3": to_matlab(joints_3d), "univ_annot3": to_matlab(joints_3d * 0.9),
        "valid_frame": valid[None].astype(float),
    })  # fmt: skip


def test_convert_test_set_keeps_valid_frames(tmp_path):
    rng = np.random.default_rng(3)
    joints_3d = rng.normal(scale=300, size=(5, 17, 3)) + np.array([0, 0, 4000])
    joints_2d = joints_3d[..., :2] / joints_3d[..., 2:] * 1500 + 1024
    write_test_annot(
        tmp_path / "mpi_inf_3dhp_test_set" / "TS2" / "annot_data.mat",
        joints_2d,
        joints_3d,
        np.array([1, 0, 1, 1, 0]),
    )
    read_2d, read_3d, _ = read_mpi_inf_test_annotations(
        tmp_path / "mpi_inf_3dhp_test_set" / "TS2" / "annot_data.mat", annot3_key="annot3"
    )
    np.testing.assert_allclose(read_2d, joints_2d)
    np.testing.assert_allclose(read_3d, joints_3d)
    report = convert_mpi_inf_test(
        tmp_path, tmp_path / "test.npz", annot3_key="univ_annot3", sequences=[2]
    )
    data = np.load(report.output)
    assert (
        list(data["frame"]) == [0, 2, 3]
        and data["imgname"][1] == "mpi_inf_3dhp_test_set/TS2/imageSequence/img_000003.jpg"
    )
    np.testing.assert_allclose(
        data["pelvis_3d"][1], joints_3d[2, MPI_INF17_NAMES.index("pelvis")] * 0.9 / 1000
    )
    with pytest.raises(ValueError, match="`cameras` has no entry 'TS2'"):
        convert_mpi_inf_test(
            tmp_path, tmp_path / "t.npz", annot3_key="annot3", sequences=[2], cameras={}
        )


@pytest.mark.skipif(importlib.util.find_spec("h5py") is not None, reason="h5py installed")
def test_matlab_v73_test_files_need_h5py(tmp_path):
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
    path = tmp_path / "annot_data.mat"
    path.write_bytes(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM" + b"\x00" * 512)
    with pytest.raises(
        ImportError, match=r"annot_data\.mat is a MATLAB v7\.3 \(HDF5\) file; reading it needs h5py"
    ):
        read_mpi_inf_test_annotations(path, annot3_key="annot3")


# --- real samples -------------------------------------------------------------------------


def test_real_camera_pickles(shared_data):
    train = read_mpi_inf_cameras_pickle(shared_data / "mpi_inf_3dhp" / "cameras_train.pkl")
    test = read_mpi_inf_cameras_pickle(shared_data / "mpi_inf_3dhp" / "cameras_test.pkl")
    assert len(train) == 128 and train["S4_Seq2_Cam0"].height == 2048  # upstream h = 204 fixed
    assert test["TS5"].width == 1920 and test["TS5"].height == 1080


def test_real_training_frame_round_trip(shared_data, tmp_path):
    """A training annot.mat holding the real frame S4/Seq2/camera 0/frame 1032 converts to the
    real sample's box, image and (up to annotation noise) self-consistent projection."""
    real = np.load(shared_data / "mpi_inf_3dhp" / "test_3dhp_train.npz")
    camera = read_mpi_inf_cameras_pickle(shared_data / "mpi_inf_3dhp" / "cameras_train.pkl")[
        "S4_Seq2_Cam0"
    ]
    frame = 1032
    joints_2d = np.zeros((frame + 1, 28, 2))
    joints_3d = np.zeros((frame + 1, 28, 3))
    joints_2d[:] = real["part"][0, 14, :2]
    joints_3d[:] = real["S"][0, 14, :3] * 1000
    joints_2d[:, list(MPI_INF17_FROM_28)] = real["part"][0, :, :2]
    joints_3d[:, list(MPI_INF17_FROM_28)] = real["S"][0, :, :3] * 1000
    folder = tmp_path / "S4" / "Seq2"
    folder.mkdir(parents=True)
    write_annot(folder / "annot.mat", [joints_2d], [joints_3d])
    write_calibration(folder / "camera.calibration", [camera])
    report = convert_mpi_inf_train(
        tmp_path, tmp_path / "out.npz", annot3_key="annot3", subjects=[4], sequences=[2], cameras=[0],
        step=8, imgname_template="S{subject}_Seq{sequence}_Cam{camera}_{frame:06d}.jpg",
    )  # fmt: skip
    data = np.load(report.output)
    row = list(data["frame"]).index(frame)
    assert data["imgname"][row] == real["imgname"][0] == "S4_Seq2_Cam0_001033.jpg"
    np.testing.assert_allclose(data["center"][row], real["center"][0], atol=1e-6)
    np.testing.assert_allclose(data["scale"][row], real["scale"][0] * 200, rtol=1e-6)
    projected = PinholeCamera(
        rotation=np.eye(3),
        translation=np.zeros(3),
        focal_px=data["focal_px"][row],
        center_px=data["center_px"][row],
    ).project_camera_points(data["extra_keypoints_3d"][row, _EXTRA, :3] + data["pelvis_3d"][row])
    assert (
        np.abs(projected - data["extra_keypoints_2d"][row, _EXTRA, :2]).max() < 2.5
    )  # real annotations: ~2 px
    image = cv2.imread(str(shared_data / "mpi_inf_3dhp" / "images" / data["imgname"][row]))
    assert image is not None and image.shape[:2] == (2048, 2048)


def test_real_test_frame_round_trip(shared_data, tmp_path):
    real = np.load(shared_data / "mpi_inf_3dhp" / "test_3dhp_test.npz")
    cameras = read_mpi_inf_cameras_pickle(shared_data / "mpi_inf_3dhp" / "cameras_test.pkl")
    frame = 2000
    joints_2d = np.repeat(real["part"][:, :, :2], frame + 1, axis=0)
    joints_3d = np.repeat(real["S"][:, :, :3] * 1000, frame + 1, axis=0)
    valid = np.zeros(frame + 1)
    valid[frame] = 1
    write_test_annot(
        tmp_path / "mpi_inf_3dhp_test_set" / "TS1" / "annot_data.mat", joints_2d, joints_3d, valid
    )
    report = convert_mpi_inf_test(
        tmp_path, tmp_path / "out.npz", annot3_key="annot3", sequences=[1], cameras=cameras,
        imgname_template="TS{sequence}_{frame:06d}.jpg",
    )  # fmt: skip
    data = np.load(report.output)
    assert report.num_rows == 1 and data["imgname"][0] == real["imgname"][0]
    np.testing.assert_allclose(data["center"][0], real["center"][0], atol=1e-6)
    np.testing.assert_allclose(data["scale"][0], real["scale"][0] * 200, rtol=1e-6)
    camera = PinholeCamera(
        rotation=np.eye(3),
        translation=np.zeros(3),
        focal_px=data["focal_px"][0],
        center_px=data["center_px"][0],
    )
    projected = camera.project_camera_points(
        data["extra_keypoints_3d"][0, _EXTRA, :3] + data["pelvis_3d"][0]
    )
    assert np.abs(projected - data["extra_keypoints_2d"][0, _EXTRA, :2]).max() < 2.0
    assert cv2.imread(str(shared_data / "mpi_inf_3dhp" / "images" / data["imgname"][0])) is not None
