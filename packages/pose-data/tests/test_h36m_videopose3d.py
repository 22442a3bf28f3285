import numpy as np
import pytest

from pose_data.h36m_videopose3d import read_npz_object, read_videopose3d_2d, read_videopose3d_3d


def write_vp3d(tmp_path, *, frames=(6, 4)):
    rng = np.random.default_rng(0)
    positions_3d = {
        "S1": {"Directions 1": rng.normal(size=(frames[0], 32, 3))},
        "S9": {"Walking": rng.normal(size=(frames[1], 32, 3))},
    }
    positions_2d = {
        subject: {
            action: [rng.uniform(0, 1000, size=(len(p) + 2, 17, 2)) for _ in range(4)]
            for action, p in actions.items()
        }
        for subject, actions in positions_3d.items()
    }
    metadata = {
        "layout_name": "h36m",
        "num_joints": 17,
        "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
    }
    np.savez(tmp_path / "data_3d_h36m.npz", positions_3d=positions_3d)
    np.savez(tmp_path / "data_2d_h36m_gt.npz", positions_2d=positions_2d, metadata=metadata)
    return positions_3d, positions_2d


def test_reads_videopose3d_files_without_unsafe_pickle(tmp_path):
    positions_3d, positions_2d = write_vp3d(tmp_path)
    read_3d = read_videopose3d_3d(tmp_path / "data_3d_h36m.npz")
    np.testing.assert_array_equal(read_3d["S1"]["Directions 1"], positions_3d["S1"]["Directions 1"])
    read_2d, metadata = read_videopose3d_2d(tmp_path / "data_2d_h36m_gt.npz")
    assert metadata["num_joints"] == 17 and len(read_2d["S9"]["Walking"]) == 4
    np.testing.assert_array_equal(read_2d["S9"]["Walking"][3], positions_2d["S9"]["Walking"][3])


def test_reports_the_bad_field(tmp_path):
    np.savez(tmp_path / "a.npz", positions_3d={"S1": {"Walking": np.zeros((3, 17, 3))}})
    with pytest.raises(
        ValueError,
        match=r"a\.npz: field 'positions_3d'\['S1'\]\['Walking'\] must have shape \(T, 32, 3\)",
    ):
        read_videopose3d_3d(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", positions_2d={"S1": {"Walking": [np.zeros((3, 17, 2))] * 3}})
    with pytest.raises(ValueError, match="must list 4 cameras, got 3"):
        read_videopose3d_2d(tmp_path / "b.npz")
    with pytest.raises(ValueError, match="field 'positions_3d' is missing"):
        read_videopose3d_3d(tmp_path / "b.npz")


class Hostile:
    def __reduce__(self):
        return (print, ("owned",))


def test_refuses_objects_that_are_not_data(tmp_path):
    np.savez(tmp_path / "evil.npz", positions_3d=np.array([Hostile()], dtype=object))
    with pytest.raises(
        ValueError,
        match=r"evil\.npz field 'positions_3d'.*refusing to load global 'builtins\.print'",
    ):
        read_npz_object(tmp_path / "evil.npz", "positions_3d")
