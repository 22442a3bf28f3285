"""A hostile file given to every loader of the project: refused or read inertly, never executed.

Each hostile file carries the classic pickle payload: an object whose ``__reduce__`` asks the
unpickler to call ``os.system`` with a command that creates a marker file. A loader passes when
the marker never appears and the loader either refuses the file with an error that names the
file (and, for pickle readers, the refused global ``posix.system`` / ``nt.system``) or reads it
with the payload replaced by an inert stand-in (the official importer only).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from pipeline.testing import load_tool

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = os.system.__module__ + ".system"  # how a pickle names os.system: posix.system / nt.system


class Payload:
    """Unpickling this calls ``os.system("touch <marker>")`` under an unrestricted unpickler."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def write_hostile(kind: str, path: Path, marker: Path) -> Path:
    """Write a hostile file of `kind` at `path`."""
    payload = Payload(marker)
    if kind == "pickle":  # the payload is the whole pickle (also what the legacy header reads)
        path.write_bytes(pickle.dumps(payload, protocol=2))
    elif kind == "pickle-in-data":  # plausible data around it, payload inside
        data = {"state_dict": {}, "arrays": [np.zeros(3)], "meta": payload}
        path.write_bytes(pickle.dumps(data, protocol=2))
    elif kind == "torch-zip":
        torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": payload}, path)
    elif kind == "torch-legacy":
        torch.save(
            {"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": payload},
            path,
            _use_new_zipfile_serialization=False,
        )
    elif kind == "npz-object":
        hostile = np.array([payload], dtype=object)
        np.savez(path, body_pose=hostile, positions_3d=hostile)
    elif kind == "yaml":
        path.write_text(f"output_dir: !!python/object/apply:os.system [\"touch '{marker}'\"]\n")
    else:
        raise AssertionError(kind)
    return path


def _refused(load: Callable[[Path], object], path: Path, marker: Path, *, names_global: bool):
    with pytest.raises((ValueError, pickle.UnpicklingError)) as info:
        load(path)
    message = str(info.value)
    assert path.name in message, message
    if names_global:
        assert SYSTEM in message, message
    assert not marker.exists(), "the file's code ran"


# --- pickle readers with an allow-list: refuse, naming the file and the global ----------------


def _pose_body(name: str) -> Callable[[Path], object]:
    import pose_body

    return getattr(pose_body, name)


def _pose_data(name: str) -> Callable[[Path], object]:
    import pose_data

    return getattr(pose_data, name)


PICKLE_READERS = {
    # pose-body: SMPL model files, joint regressors (SMPL_to_J19.pkl), generic safe reader
    "pose_body.safe_load_pickle": lambda p: _pose_body("safe_load_pickle")(p),
    "pose_body.load_smpl_model": lambda p: _pose_body("load_smpl_model")(p),
    "pose_body.load_joint_regressor": lambda p: _pose_body("load_joint_regressor")(p),
    # pose-data: multiview pickles and the dataset pickles (3DPW, H36M cameras, MPI-INF
    # cameras, Mannequin Challenge annotations), and the generic restricted reader
    "pose_data.restricted_pickle_load": lambda p: _pose_data("restricted_pickle_load")(p),
    "pose_data.read_multiview_pickle": lambda p: _pose_data("read_multiview_pickle")(p),
    "pose_data.read_3dpw_sequence": lambda p: _pose_data("read_3dpw_sequence")(p),
    "pose_data.read_h36m_cameras": lambda p: _pose_data("read_h36m_cameras")(p),
    "pose_data.read_mpi_inf_cameras_pickle": lambda p: _pose_data("read_mpi_inf_cameras_pickle")(p),
    "pose_data.read_mannequin_annotations": lambda p: _pose_data("read_mannequin_annotations")(p),
}


@pytest.mark.parametrize("kind", ["pickle", "pickle-in-data"])
@pytest.mark.parametrize("reader", sorted(PICKLE_READERS))
def test_pickle_readers_refuse_a_hostile_pickle(reader, kind, tmp_path) -> None:
    marker = tmp_path / "executed"
    path = write_hostile(kind, tmp_path / "hostile.pkl", marker)
    _refused(PICKLE_READERS[reader], path, marker, names_global=True)


def test_gmm_prior_file_is_refused(tmp_path) -> None:
    from prohmr_model.fitting import load_pose_prior

    marker = tmp_path / "executed"
    path = write_hostile("pickle-in-data", tmp_path / "gmm_08.pkl", marker)
    _refused(lambda p: load_pose_prior(p, training_files=[]), path, marker, names_global=True)


# --- torch files read with weights_only=True: refuse, naming the file and the global ----------


def _backbone_weights(path: Path) -> object:
    from hmr_backbone import ResNet, load_backbone_weights

    return load_backbone_weights(ResNet(depth=18), path)


def _run_checkpoint(path: Path) -> object:
    from pipeline.runtime import load_checkpoint

    return load_checkpoint(path)


def _prohmr_checkpoint(path: Path) -> object:
    from pipeline.session import load_prohmr_checkpoint

    return load_prohmr_checkpoint(path, device=torch.device("cpu"))


TORCH_READERS = {
    "hmr_backbone.load_backbone_weights": _backbone_weights,
    "pipeline.runtime.load_checkpoint (--resume, evaluation)": _run_checkpoint,
    "pipeline.session.load_prohmr_checkpoint": _prohmr_checkpoint,
}


@pytest.mark.parametrize("kind", ["torch-zip", "torch-legacy", "pickle"])
@pytest.mark.parametrize("reader", sorted(TORCH_READERS))
def test_weights_only_readers_refuse_a_hostile_file(reader, kind, tmp_path) -> None:
    marker = tmp_path / "executed"
    path = write_hostile(kind, tmp_path / "hostile.pt", marker)
    _refused(TORCH_READERS[reader], path, marker, names_global=kind != "pickle")


# --- the official importer: any Lightning file's tensors, its other objects inert -------------


@pytest.mark.parametrize("kind", ["torch-zip", "torch-legacy"])
def test_official_importer_reads_a_hostile_lightning_file_inertly(kind, tmp_path) -> None:
    tool = load_tool("import_official_checkpoint")
    marker = tmp_path / "executed"
    path = write_hostile(kind, tmp_path / "official.ckpt", marker)
    loaded = tool.read_official(path)
    assert not marker.exists(), "the file's code ran"
    torch.testing.assert_close(loaded["state_dict"]["w"], torch.zeros(2))
    hyper = loaded["hyper_parameters"]
    assert isinstance(hyper, tool._Inert) and hyper.global_name == SYSTEM


@pytest.mark.parametrize("kind", ["pickle", "pickle-in-data"])
def test_official_importer_refuses_a_plain_hostile_pickle(kind, tmp_path) -> None:
    """A non-zip file goes through torch's legacy reader, whose header records are unpickled
    with the importer's pickle module: the inert one, never ``pickle.load``."""
    tool = load_tool("import_official_checkpoint")
    marker = tmp_path / "executed"
    path = write_hostile(kind, tmp_path / "official.ckpt", marker)
    with pytest.raises(ValueError, match="not a readable torch checkpoint") as info:
        tool.read_official(path)
    assert str(path) in str(info.value)
    assert not marker.exists(), "the file's code ran"


@pytest.mark.parametrize("kind", ["pickle", "torch-zip", "torch-legacy"])
def test_official_importer_program_on_a_hostile_file(kind, tmp_path) -> None:
    tool = load_tool("import_official_checkpoint")
    marker = tmp_path / "executed"
    path = write_hostile(kind, tmp_path / "official.ckpt", marker)
    argv = ["--kind", "prohmr", "--checkpoint", str(path), "--out", str(tmp_path / "out.pt")]
    with pytest.raises(ValueError):
        tool.main(argv)
    assert not marker.exists(), "the file's code ran"
    assert not (tmp_path / "out.pt").exists()


# --- npz files: never unpickled ------------------------------------------------------------


NPZ_READERS = {
    "pose_data.read_prohmr_npz": lambda p: _pose_data("read_prohmr_npz")(p),
    "pose_body.load_mean_params": lambda p: _pose_body("load_mean_params")(p),
    "pose_body.load_smpl_model (.npz)": lambda p: _pose_body("load_smpl_model")(p),
    "pose_data.read_lifting_stats": lambda p: _pose_data("read_lifting_stats")(p),
}


@pytest.mark.parametrize("reader", sorted(NPZ_READERS))
def test_npz_readers_never_unpickle_object_arrays(reader, tmp_path) -> None:
    marker = tmp_path / "executed"
    path = write_hostile("npz-object", tmp_path / "hostile.npz", marker)
    with pytest.raises(ValueError) as info:
        NPZ_READERS[reader](path)
    assert not marker.exists(), "the file's code ran"
    assert "hostile.npz" in str(info.value) or "pickle" in str(info.value), str(info.value)


@pytest.mark.parametrize("reader", ["read_humandata", "convert_humandata"])
def test_humandata_object_arrays_are_unpickled_restrictedly(reader, tmp_path) -> None:
    """HumanData keeps dicts in object arrays, so its reader unpickles them, restrictedly."""
    marker = tmp_path / "executed"
    path = write_hostile("npz-object", tmp_path / "hostile.npz", marker)
    load = _pose_data(reader)
    if reader == "convert_humandata":
        _refused(lambda p: load(p, tmp_path / "out.npz"), path, marker, names_global=True)
    else:
        _refused(load, path, marker, names_global=True)


# --- YAML: configs and the dataset registry are read with safe_load --------------------------


def test_config_yaml_cannot_run_code(tmp_path) -> None:
    from pipeline.config import ProHMRConfig, load_config

    marker = tmp_path / "executed"
    path = write_hostile("yaml", tmp_path / "config.yaml", marker)
    with pytest.raises(ValueError) as info:
        load_config(ProHMRConfig, path)
    assert path.name in str(info.value)
    assert not marker.exists(), "the file's code ran"


def test_registry_yaml_cannot_run_code(tmp_path) -> None:
    from pipeline.data import load_registry

    marker = tmp_path / "executed"
    path = write_hostile("yaml", tmp_path / "datasets.yaml", marker)
    with pytest.raises(ValueError) as info:
        load_registry(path, data_root=str(tmp_path))
    assert path.name in str(info.value)
    assert not marker.exists(), "the file's code ran"


def test_videopose3d_npz_objects_go_through_the_restricted_unpickler(tmp_path) -> None:
    """VideoPose3D's npz files hold pickled dicts: read with the allow-list, never np.load's
    pickle support."""
    marker = tmp_path / "executed"
    path = write_hostile("npz-object", tmp_path / "data_3d_h36m.npz", marker)
    _refused(_pose_data("read_videopose3d_3d"), path, marker, names_global=True)


@pytest.mark.parametrize(
    "program",
    ["eval_regression", "eval_fitting", "eval_multiview", "eval_lifting", "visualize_latent"],
)
@pytest.mark.parametrize("kind", ["torch-zip", "pickle"])
def test_programs_refuse_a_hostile_checkpoint(program, kind, tmp_path) -> None:
    """Every program that takes ``--checkpoint`` reads it with the weights-only loader."""
    tool = load_tool(program)
    marker = tmp_path / "executed"
    path = write_hostile(kind, tmp_path / "model.pt", marker)
    with pytest.raises(ValueError) as info:
        tool.main(["--checkpoint", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert str(path) in str(info.value)
    assert not marker.exists(), "the file's code ran"
