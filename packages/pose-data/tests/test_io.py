import collections
import os
import pickle

import cv2
import numpy as np
import pytest

from pose_data import (
    PROHMR_NPZ_SHAPES,
    atomic_write,
    atomic_write_npz,
    atomic_write_pickle,
    extract_video_frames,
    restricted_pickle_load,
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


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_atomic_write_gives_the_mode_of_an_ordinary_file(tmp_path):
    """Not mkstemp's private 0600: 0666 less the umask, like open(path, "w")."""
    old = os.umask(0o027)
    try:
        written = atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
        with open(tmp_path / "b.bin", "wb"):
            pass
    finally:
        os.umask(old)
    assert written.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o640


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


def test_extract_video_frames_counts_from_zero(tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (32, 24))
    assert writer.isOpened()
    for index in range(6):
        writer.write(np.full((24, 32, 3), 40 * index, np.uint8))
    writer.release()
    extract_video_frames(video, {0: tmp_path / "f0.jpg", 3: tmp_path / "out" / "f3.jpg"})
    assert abs(cv2.imread(str(tmp_path / "f0.jpg")).mean() - 0) < 8
    assert abs(cv2.imread(str(tmp_path / "out" / "f3.jpg")).mean() - 120) < 8
    with pytest.raises(ValueError, match="video ends after 6 frames"):
        extract_video_frames(video, {9: tmp_path / "f9.jpg"})
    assert not (tmp_path / "f9.jpg").exists()


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo hacked > {self.marker}",))


def test_restricted_pickle_refuses_code_and_runs_nothing(tmp_path):
    marker = tmp_path / "hacked.txt"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps([{"a": np.zeros(2)}, _RunsShell(marker)]))
    system = "nt" if os.name == "nt" else "posix"
    with pytest.raises(ValueError, match=rf"evil\.pkl.*refusing to load global '{system}\.system'"):
        restricted_pickle_load(evil)
    with pytest.raises(ValueError, match=r"<bytes>.*refusing to load global 'builtins\.eval'"):
        restricted_pickle_load(pickle.dumps(eval))
    with pytest.raises(ValueError, match=r"in\.npz field 'x'.*'collections\.Counter'"):
        restricted_pickle_load(pickle.dumps(collections.Counter()), name="in.npz field 'x'")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_restricted_pickle_reads_numpy_and_containers(tmp_path, protocol):
    data = [
        {
            "a": np.arange(6, dtype=np.float32).reshape(2, 3),
            "names": np.array(["x", "yz"]),
            "b": (np.float64(2.5), np.int32(3), "s", b"raw", bytearray(b"ba")),
            "c": collections.OrderedDict(k=[1, 2.0, None, True]),
        }
    ]
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    for source in (path, str(path), path.read_bytes()):
        loaded = restricted_pickle_load(source)
        np.testing.assert_array_equal(loaded[0]["a"], data[0]["a"])
        assert loaded[0]["a"].dtype == np.float32
        np.testing.assert_array_equal(loaded[0]["names"], ["x", "yz"])
        assert loaded[0]["b"] == data[0]["b"] and loaded[0]["c"] == data[0]["c"]


def test_restricted_pickle_errors_name_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"none\.pkl"):
        restricted_pickle_load(tmp_path / "none.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"cannot read pickle .*junk\.pkl"):
        restricted_pickle_load(tmp_path / "junk.pkl")
    with pytest.raises(ValueError, match="cannot read pickle <bytes>"):
        restricted_pickle_load(b"")
    with pytest.raises(TypeError, match="`source` must be a path or bytes, got int"):
        restricted_pickle_load(3)
