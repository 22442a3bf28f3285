import importlib
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from pose_body import (
    SMPLModelData,
    UnsafePickleError,
    load_joint_regressor,
    load_mean_params,
    load_smpl_model,
    safe_load_pickle,
    write_joint_regressor,
    write_mean_params,
    write_smpl_model_npz,
    write_smpl_model_pickle,
)


class Ch:
    """A stand-in for ``chumpy.ch.Ch`` that pickles the way chumpy does.

    chumpy pickles a Ch through ``__getstate__``: its ``__dict__`` without the weak references,
    i.e. the value ``x`` plus bookkeeping (a set of dirty variables, flags, a dict). The class
    is named ``chumpy.ch.Ch``; that module exists only while a test pickles it.
    """

    __module__ = "chumpy.ch"

    def __init__(self, x):
        self.x = np.asarray(x, dtype=np.float64)
        self._dirty_vars = {"x"}
        self._itr = None
        self._make_dense = False
        self._make_sparse = False
        self._depends_on_deps = {}

    def __getstate__(self):
        return dict(self.__dict__)


@pytest.fixture
def fake_chumpy(monkeypatch):
    """Make `Ch` picklable as chumpy.ch.Ch; undone (chumpy unimportable again) after the test."""
    package = types.ModuleType("chumpy")
    module = types.ModuleType("chumpy.ch")
    module.Ch = Ch
    package.ch = module
    monkeypatch.setitem(sys.modules, "chumpy", package)
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    return monkeypatch


def _official_like_dict(model: SMPLModelData, *, chumpy: bool) -> dict:
    """The key layout of SMPL_NEUTRAL.pkl (v1.0): chumpy arrays, a sparse J_regressor."""
    wrap = Ch if chumpy else np.array
    kintree = model.kintree_table.copy()
    kintree[0, 0] = 2**32 - 1
    return {
        "v_template": wrap(model.v_template),
        "shapedirs": wrap(model.shapedirs),
        "posedirs": np.array(model.posedirs),
        "J_regressor": scipy.sparse.csc_matrix(model.J_regressor),
        "J_regressor_prior": scipy.sparse.csc_matrix(model.J_regressor),
        "weights": wrap(model.weights),
        "weights_prior": np.array(model.weights),
        "kintree_table": kintree,
        "f": model.faces.astype(np.uint32),
        "J": wrap(model.J_regressor @ model.v_template),
        "vert_sym_idxs": np.arange(model.num_vertices),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "pose_training_info": {"num_poses": 1, "flags": {1, 2}},
    }


def test_chumpy_pickle_loads_without_chumpy(fake_chumpy, procedural, tmp_path):
    model = procedural.model
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(_official_like_dict(model, chumpy=True), protocol=2))
    fake_chumpy.undo()  # chumpy is gone again ...
    fake_chumpy.setitem(sys.modules, "chumpy", None)  # ... and importing it fails
    with pytest.raises(ImportError):
        importlib.import_module("chumpy")

    raw = safe_load_pickle(path)
    assert isinstance(raw["shapedirs"], np.ndarray)
    assert scipy.sparse.issparse(raw["J_regressor"])
    assert raw["pose_training_info"]["flags"] == {1, 2}

    loaded = load_smpl_model(path)
    np.testing.assert_array_equal(loaded.shapedirs, model.shapedirs)
    np.testing.assert_array_equal(loaded.v_template, model.v_template)
    np.testing.assert_array_equal(loaded.J_regressor, model.J_regressor)
    np.testing.assert_array_equal(loaded.faces, model.faces)
    assert loaded.faces.dtype == np.int64
    assert loaded.kintree_table[0, 0] == -1
    np.testing.assert_array_equal(loaded.parents, model.parents)


def test_chumpy_pickles_of_every_protocol_load(fake_chumpy, tmp_path):
    value = {"a": Ch(np.arange(6.0).reshape(2, 3)), "b": [Ch([1.0]), (Ch([2.0]),)]}
    for protocol in (0, 1, 2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        out = safe_load_pickle(path)
        np.testing.assert_array_equal(out["a"], np.arange(6.0).reshape(2, 3))
        assert isinstance(out["b"][0], np.ndarray)
        assert isinstance(out["b"][1], tuple)
        np.testing.assert_array_equal(out["b"][1][0], [2.0])


def test_chumpy_object_without_value_is_refused_with_the_path(fake_chumpy, tmp_path):
    broken = Ch([1.0])
    del broken.x
    path = tmp_path / "broken.pkl"
    path.write_bytes(pickle.dumps({"shapedirs": broken}, protocol=2))
    with pytest.raises(ValueError, match=r"broken\.pkl.*no 'x' array"):
        safe_load_pickle(path)


class _System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Popen:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (subprocess.Popen, (self.command,))


class _Eval:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (eval, (f"__import__('os').system({self.command!r})",))


class _Reconstruct:
    """copyreg._reconstructor is allowed, but not with a class outside the allow-list."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import copyreg

        return (copyreg._reconstructor, (subprocess.Popen, object, None))


@pytest.mark.parametrize("payload", [_System, _Popen, _Eval, _Reconstruct])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_pickle_calling_a_function_is_refused_and_nothing_runs(payload, protocol, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": payload(f"touch {marker}")}, protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"SMPL_NEUTRAL\.pkl.*refused .*global") as info:
        safe_load_pickle(path)
    assert isinstance(info.value, ValueError)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        load_smpl_model(path)
    assert not marker.exists()


def test_refusal_names_the_global(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_System("true"), protocol=2))
    with pytest.raises(UnsafePickleError, match=r"'posix\.system'|'nt\.system'"):
        safe_load_pickle(path)


def test_plain_pickles_of_numbers_strings_and_sparse_load(tmp_path):
    data = {
        "a": np.arange(4, dtype=np.float32),
        "s": "text",
        "n": np.float64(1.5),
        "sp": scipy.sparse.csr_matrix(np.eye(3)),
        "set": {1, 2},
        "c": 1 + 2j,
    }
    for protocol in (0, 2, 5):
        path = tmp_path / f"plain{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        out = safe_load_pickle(path)
        np.testing.assert_array_equal(out["a"], data["a"])
        assert out["a"].dtype == np.float32
        assert out["n"] == 1.5
        np.testing.assert_array_equal(out["sp"].toarray(), np.eye(3))
        assert out["set"] == {1, 2} and out["c"] == 1 + 2j


def test_garbage_and_missing_pickles_raise_with_the_path(tmp_path):
    path = tmp_path / "garbage.pkl"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match=r"garbage\.pkl.*not a readable pickle"):
        safe_load_pickle(path)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pkl"):
        safe_load_pickle(tmp_path / "nowhere.pkl")


def test_official_pickle_and_npz_round_trip(procedural, tmp_path):
    model = procedural.model
    pkl = write_smpl_model_pickle(model, tmp_path / "model.pkl")
    npz = write_smpl_model_npz(model, tmp_path / "model.npz")
    for path in (pkl, npz):
        loaded = load_smpl_model(path)
        for field in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
            np.testing.assert_array_equal(getattr(loaded, field), getattr(model, field))
            assert getattr(loaded, field).dtype == np.float64
        np.testing.assert_array_equal(loaded.faces, model.faces)
        np.testing.assert_array_equal(loaded.kintree_table, model.kintree_table)
    raw = pickle.loads(pkl.read_bytes(), encoding="latin1")  # noqa: S301 - as smplx reads it
    assert scipy.sparse.issparse(raw["J_regressor"])
    assert raw["f"].dtype == np.uint32
    with np.load(npz, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(
            ["v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"]
        )


def test_model_arrays_are_read_only(procedural):
    with pytest.raises(ValueError, match="read-only"):
        procedural.model.v_template[0, 0] = 1.0


def test_missing_model_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SMPL_NEUTRAL\.pkl.*smpl\.is\.tue\.mpg\.de"):
        load_smpl_model(tmp_path / "SMPL_NEUTRAL.pkl")
    with pytest.raises(FileNotFoundError, match=r"is a folder"):
        load_smpl_model(tmp_path)


def test_missing_key_is_named(procedural, tmp_path):
    data = _official_like_dict(procedural.model, chumpy=False)
    del data["posedirs"]
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(ValueError, match=r"SMPL_NEUTRAL\.pkl.*missing key\(s\) \['posedirs'\]"):
        load_smpl_model(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "shapedirs",
            np.zeros((6890, 10)),
            r"'shapedirs' must be an array of shape \(6890, 3, num_betas\), got shape \(6890, 10\)",
        ),
        (
            "posedirs",
            np.zeros((6890, 3, 10)),
            r"'posedirs' must be an array of shape \(6890, 3, 207\)",
        ),
        (
            "J_regressor",
            np.zeros((23, 6890)),
            r"'J_regressor' must be an array of shape \(24, 6890\), got shape \(23, 6890\)",
        ),
        ("weights", np.zeros((6890, 23)), r"'weights' must be an array of shape \(6890, 24\)"),
        (
            "kintree_table",
            np.zeros((2, 23), dtype=np.int64),
            r"'kintree_table' must be an array of shape \(2, 24\)",
        ),
        ("f", np.array([[0, 1, 7000]]), r"'faces' must be vertex indices in 0\.\.6889"),
        ("v_template", np.full((6890, 3), np.nan), r"'v_template' must be finite"),
    ],
)
def test_wrong_shapes_are_named_with_the_file(procedural, tmp_path, key, value, message):
    data = dict(np.load(write_smpl_model_npz(procedural.model, tmp_path / "m.npz")))
    data[key] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **data)
    with pytest.raises(ValueError, match=r"bad\.npz: " + message):
        load_smpl_model(path)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, v_template=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"objects\.npz"):
        load_smpl_model(path)


def test_pickle_holding_a_list_is_not_a_model(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match=r"list\.pkl: an SMPL model pickle must hold a dict"):
        load_smpl_model(path)


def test_model_data_validates_on_construction(procedural):
    fields = {
        name: getattr(procedural.model, name)
        for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")
    }
    with pytest.raises(ValueError, match=r"SMPLModelData: 'faces' must be an integer array"):
        SMPLModelData(
            **fields,
            kintree_table=procedural.model.kintree_table,
            faces=np.zeros((2, 3), dtype=np.float32),
        )
    bad_tree = procedural.model.kintree_table.copy()
    bad_tree[0, 5] = 7
    with pytest.raises(ValueError, match=r"parents precede their children"):
        SMPLModelData(**fields, kintree_table=bad_tree, faces=procedural.model.faces)


def test_joint_regressors_in_every_format(tmp_path):
    rng = np.random.default_rng(0)
    regressor = rng.random((19, 50))
    dense = write_joint_regressor(tmp_path / "SMPL_to_J19.pkl", regressor)
    npy = write_joint_regressor(tmp_path / "J_regressor_h36m.npy", regressor)
    sparse = tmp_path / "sparse.pkl"
    sparse.write_bytes(pickle.dumps(scipy.sparse.csc_matrix(regressor), protocol=2))
    npz = tmp_path / "one.npz"
    np.savez(npz, regressor=regressor)
    for path in (dense, npy, sparse, npz):
        out = load_joint_regressor(path, num_joints=19, num_vertices=50)
        np.testing.assert_allclose(out, regressor)
        assert out.dtype == np.float64
    assert pickle.loads(dense.read_bytes(), encoding="latin1").shape == (19, 50)  # noqa: S301


def test_joint_regressor_shape_and_content_errors(tmp_path):
    path = write_joint_regressor(tmp_path / "SMPL_to_J19.pkl", np.zeros((17, 50)))
    with pytest.raises(
        ValueError,
        match=r"SMPL_to_J19\.pkl: joint regressor must have shape \(19, 6890\), got \(17, 50\)",
    ):
        load_joint_regressor(path, num_joints=19, num_vertices=6890)
    text = tmp_path / "text.pkl"
    text.write_bytes(pickle.dumps("hello"))
    with pytest.raises(
        ValueError, match=r"text\.pkl: a joint regressor file must hold one numeric"
    ):
        load_joint_regressor(text)
    two = tmp_path / "two.npz"
    np.savez(two, a=np.zeros((2, 2)), b=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"two\.npz: a regressor \.npz must hold exactly one"):
        load_joint_regressor(two)
    with pytest.raises(FileNotFoundError, match=r"J_regressor_h36m\.npy.*fetch_data"):
        load_joint_regressor(tmp_path / "J_regressor_h36m.npy")


def test_real_mean_params_file(shared_data):
    params = load_mean_params(shared_data / "smpl_mean_params" / "smpl_mean_params.npz")
    assert params.pose_6d.shape == (144,) and params.pose_6d.dtype == np.float32
    assert params.betas.shape == (10,) and params.camera.shape == (3,)
    np.testing.assert_allclose(params.camera, [0.9, 0.0, 0.0])
    # SPIN's 6D layout: each joint is a row-major (3, 2) matrix whose columns are orthonormal.
    pairs = params.pose_6d.reshape(24, 3, 2).astype(np.float64)
    np.testing.assert_allclose(
        np.einsum("nci,ncj->nij", pairs, pairs), np.eye(2)[None].repeat(24, 0), atol=1e-4
    )


def test_mean_params_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    pose, betas, camera = rng.random(144), rng.random((1, 10)), [0.9, 0.1, -0.1]
    path = write_mean_params(tmp_path / "mean.npz", pose_6d=pose, betas=betas, camera=camera)
    assert path == tmp_path / "mean.npz" and not list(tmp_path.glob(".*tmp"))
    params = load_mean_params(path)
    np.testing.assert_allclose(params.pose_6d, pose, rtol=1e-6)
    np.testing.assert_allclose(params.betas, betas[0], rtol=1e-6)
    np.testing.assert_allclose(params.camera, camera, rtol=1e-6)
    with pytest.raises(ValueError, match=r"'camera' must have shape \(3,\), got \(2,\)"):
        write_mean_params(tmp_path / "x.npz", pose_6d=pose, betas=betas[0], camera=[1.0, 2.0])
    np.savez(tmp_path / "short.npz", pose=pose[:72], shape=betas[0], cam=camera)
    with pytest.raises(
        ValueError, match=r"short\.npz: 'pose' must have shape \(144,\), got \(72,\).*fetch_data"
    ):
        load_mean_params(tmp_path / "short.npz")
    np.savez(tmp_path / "partial.npz", pose=pose, shape=betas[0])
    with pytest.raises(ValueError, match=r"partial\.npz: missing key\(s\) \['cam'\]"):
        load_mean_params(tmp_path / "partial.npz")
    with pytest.raises(FileNotFoundError, match=r"smpl_mean_params\.npz.*fetch_data"):
        load_mean_params(tmp_path / "smpl_mean_params.npz")


class _Codec:
    """A pickle calling _codecs.encode with a codec other than latin-1."""

    def __reduce__(self):
        import codecs

        return (codecs.encode, ("abc", "rot13"))


def test_codecs_encode_is_allowed_for_latin1_only(tmp_path):
    path = tmp_path / "bytes.pkl"
    path.write_bytes(pickle.dumps({"b": b"\x00\xffdata"}, protocol=2))  # uses _codecs.encode
    assert safe_load_pickle(path) == {"b": b"\x00\xffdata"}
    path.write_bytes(pickle.dumps(_Codec(), protocol=2))
    with pytest.raises(UnsafePickleError, match=r"'_codecs\.encode' with encoding 'rot13'"):
        safe_load_pickle(path)
