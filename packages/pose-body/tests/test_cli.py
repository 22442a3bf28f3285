import numpy as np

from pose_body import load_smpl_model, procedural_body_model
from pose_body.cli import convert_smpl_main, procedural_model_main


def test_procedural_model_command_writes_the_three_files_and_an_npz(tmp_path, capsys):
    assert procedural_model_main([str(tmp_path / "smpl"), "--npz"]) == 0
    names = sorted(p.name for p in (tmp_path / "smpl").iterdir())
    assert names == [
        "J_regressor_h36m.npy",
        "SMPL_NEUTRAL.npz",
        "SMPL_NEUTRAL.pkl",
        "SMPL_to_J19.pkl",
    ]
    assert capsys.readouterr().out.count("wrote ") == 4


def test_convert_command_turns_a_pickle_into_a_clean_npz(tmp_path, capsys):
    procedural_model_main([str(tmp_path)])
    assert convert_smpl_main([str(tmp_path / "SMPL_NEUTRAL.pkl"), str(tmp_path / "clean.npz")]) == 0
    assert "6890 vertices" in capsys.readouterr().out
    with np.load(tmp_path / "clean.npz", allow_pickle=False) as data:
        assert data["J_regressor"].shape == (24, 6890)
    np.testing.assert_array_equal(
        load_smpl_model(tmp_path / "clean.npz").weights, procedural_body_model().model.weights
    )


def test_convert_command_reports_a_missing_file(tmp_path, capsys):
    assert convert_smpl_main([str(tmp_path / "SMPL_MALE.pkl"), str(tmp_path / "out.npz")]) == 1
    error = capsys.readouterr().err
    assert "SMPL_MALE.pkl" in error and "not found" in error
    assert not (tmp_path / "out.npz").exists()
