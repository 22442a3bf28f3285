import pickle

import numpy as np
import pytest

from pose_data import (
    PROHMR_NPZ_SHAPES,
    atomic_write,
    atomic_write_npz,
    atomic_write_pickle,
    write_mocap_npz,
    write_multiview_pickle,
    write_prohmr_npz,
)


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write(target, lambda f: f.write(b"first"))
    assert target.read_bytes() == b"first"

    def failing(file):
        file.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(target, failing)
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary left


def test_atomic_npz_refuses_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="'bad' has dtype object"):
        atomic_write_npz(tmp_path / "x.npz", {"bad": np.array([{}], dtype=object)})
    path = atomic_write_npz(tmp_path / "x.npz", {"a": np.arange(3)}, compressed=True)
    with np.load(path, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["a"], [0, 1, 2])


def test_atomic_pickle_round_trip(tmp_path):
    path = atomic_write_pickle(tmp_path / "x.pkl", {"a": [1, 2]})
    with open(path, "rb") as file:
        assert pickle.load(file) == {"a": [1, 2]}  # noqa: S301 - our own file


def test_prohmr_writer_validates_shapes_values_and_extras(tmp_path):
    good = {"imgname": ["a.jpg", "b.jpg"], "center": np.zeros((2, 2)), "scale": np.ones(2)}
    path = write_prohmr_npz(tmp_path / "ok.npz", **good, extra={"action": np.array([1, 2])})
    with np.load(path) as data:
        assert sorted(data.files) == ["action", "center", "imgname", "scale"]
        assert data["imgname"].dtype.kind == "U"
    with pytest.raises(ValueError, match=r"`center` must have shape \(2, 2\), got \(2, 3\)"):
        write_prohmr_npz(tmp_path / "x.npz", **{**good, "center": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="`scale` contains NaN"):
        write_prohmr_npz(tmp_path / "x.npz", **{**good, "scale": np.array([1.0, np.nan])})
    with pytest.raises(ValueError, match="reserved"):
        write_prohmr_npz(tmp_path / "x.npz", **good, extra={"betas": np.zeros((2, 10))})
    with pytest.raises(ValueError, match="leading dimension 2"):
        write_prohmr_npz(tmp_path / "x.npz", **good, extra={"action": np.zeros(3)})
    assert not (tmp_path / "x.npz").exists()


def test_prohmr_shapes_cover_the_format():
    assert PROHMR_NPZ_SHAPES["body_keypoints_2d"] == (25, 3)
    assert PROHMR_NPZ_SHAPES["extra_keypoints_3d"] == (19, 4)
    assert set(PROHMR_NPZ_SHAPES) >= {"imgname", "center", "scale", "body_pose", "betas"}


def test_mocap_writer(tmp_path):
    path = write_mocap_npz(tmp_path / "m.npz", body_pose=np.zeros((3, 72)), betas=np.zeros((3, 10)))
    with np.load(path) as data:
        assert data["body_pose"].dtype == np.float32 and data["betas"].shape == (3, 10)
    with pytest.raises(ValueError, match=r"`body_pose` must have shape \(n, 72\)"):
        write_mocap_npz(tmp_path / "m.npz", body_pose=np.zeros((3, 69)), betas=np.zeros((3, 10)))
    with pytest.raises(ValueError, match="`betas`"):
        write_mocap_npz(tmp_path / "m.npz", body_pose=np.zeros((3, 72)), betas=np.zeros((2, 10)))


def test_multiview_writer(tmp_path):
    frame = {"imgname": ["a", "b"], "center": np.zeros((2, 2)), "scale": np.ones(2)}
    path = write_multiview_pickle(tmp_path / "mv.pkl", [frame])
    with open(path, "rb") as file:
        loaded = pickle.load(file)  # noqa: S301 - our own file
    assert loaded[0]["imgname"].tolist() == ["a", "b"]
    with pytest.raises(ValueError, match=r"frame 0 is missing key\(s\) \['scale'\]"):
        write_multiview_pickle(
            tmp_path / "mv.pkl", [{"imgname": ["a"], "center": np.zeros((1, 2))}]
        )
    with pytest.raises(ValueError, match=r"frame 0: `betas` must have shape \(2, 10\)"):
        write_multiview_pickle(tmp_path / "mv.pkl", [{**frame, "betas": np.zeros((2, 9))}])
