"""Reading and writing SMPL model files, joint regressors and mean parameters, without chumpy.

Official SMPL pickles (``SMPL_NEUTRAL.pkl`` etc., Python 2 pickles read with latin-1) hold numpy
arrays, a scipy sparse ``J_regressor`` and chumpy arrays. They are read here by a restricted
unpickler (:func:`safe_load_pickle`) that admits only numpy arrays and scalars, scipy sparse
matrices and chumpy ``Ch`` arrays, the latter turned into plain numpy arrays without importing
chumpy. Any other global (a function such as ``os.system``, any other class) is refused before
it is looked up, so a hostile pickle cannot run code.

Every loader fails early with a message naming the file, what was expected (key, shape) and
what arrived, and where such files come from.
"""

from __future__ import annotations

import copyreg
import functools
import importlib
import io
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import scipy.sparse

from pose_body._atomic import atomic_write

__all__ = [
    "SMPL_MODEL_KEYS",
    "MeanParams",
    "SMPLModelData",
    "UnsafePickleError",
    "load_joint_regressor",
    "load_mean_params",
    "load_smpl_model",
    "safe_load_pickle",
    "write_joint_regressor",
    "write_mean_params",
    "write_smpl_model_npz",
    "write_smpl_model_pickle",
]

#: Where the external files come from (appended to error messages).
WHERE_SMPL = (
    "SMPL model files (SMPL_NEUTRAL.pkl, SMPL_MALE.pkl, SMPL_FEMALE.pkl) are distributed after "
    "registration at https://smpl.is.tue.mpg.de (ProHMR expects them in data/smpl/); for tests "
    "and demos write the procedural stand-in with pose_body.write_procedural_model(folder) or "
    "the `pose-body-procedural-model` command"
)
WHERE_REGRESSOR = (
    "SMPL_to_J19.pkl (19 extra joints) and J_regressor_h36m.npy (17 Human3.6M joints) come with "
    "ProHMR's data archive (fetch_data.sh) and SPIN's; pose_body.write_procedural_model(folder) "
    "writes matching regressors for the procedural body model"
)
WHERE_MEAN_PARAMS = (
    "smpl_mean_params.npz comes with ProHMR's and SPIN's data archives (fetch_data.sh)"
)

#: Keys of an SMPL model file (official pickle and this package's clean ``.npz``) and the
#: field of :class:`SMPLModelData` each fills.
SMPL_MODEL_KEYS: dict[str, str] = {
    "v_template": "v_template",
    "shapedirs": "shapedirs",
    "posedirs": "posedirs",
    "J_regressor": "J_regressor",
    "weights": "weights",
    "kintree_table": "kintree_table",
    "f": "faces",
}

_NUM_SMPL_JOINTS = 24
_NUM_POSE_BASIS = 9 * (_NUM_SMPL_JOINTS - 1)  # 207


# ---------------------------------------------------------------------------------------------
# Restricted unpickler
# ---------------------------------------------------------------------------------------------


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global (class or function) outside the allow-list."""


class _ChumpyArray:
    """Stand-in for ``chumpy.ch.Ch`` while unpickling: keeps the pickled state, runs nothing."""

    def __setstate__(self, state: object) -> None:
        self.state = state


@functools.cache
def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The numpy callables that numpy's own pickles name, under their numpy 1 and 2 modules."""
    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.float64(0.0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray}
    allowed[("numpy", "dtype")] = np.dtype
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    frombuffer = _find_frombuffer()
    if frombuffer is not None:
        for module in ("numpy.core.numeric", "numpy._core.numeric"):
            allowed[(module, "_frombuffer")] = frombuffer
    return allowed


def _find_frombuffer() -> Any:
    """numpy's ``_frombuffer`` (used by protocol-5 pickles of arrays), or None."""
    for module in ("numpy._core.numeric", "numpy.core.numeric"):
        try:
            return getattr(importlib.import_module(module), "_frombuffer")  # noqa: B009
        except (ImportError, AttributeError):
            continue
    return None


_SPARSE_CLASSES = frozenset(
    {
        "csc_matrix",
        "csr_matrix",
        "coo_matrix",
        "bsr_matrix",
        "dia_matrix",
        "lil_matrix",
        "dok_matrix",
        "csc_array",
        "csr_array",
        "coo_array",
    }
)
#: Builtin types that pickles of sets, sparse matrices and old-style objects name; calling any of
#: them builds plain data and runs no code.
_HARMLESS_BUILTINS: dict[str, type] = {
    "set": set,
    "frozenset": frozenset,
    "object": object,
    "complex": complex,
    "slice": slice,
    "bytearray": bytearray,
    "list": list,
    "dict": dict,
    "tuple": tuple,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only the allow-list above."""

    def __init__(self, file: IO[bytes], *, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source
        self._numpy = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._numpy:
            return self._numpy[(module, name)]
        if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and (
            name in _SPARSE_CLASSES
        ):
            return getattr(scipy.sparse, name)
        if module in ("chumpy.ch", "chumpy") and name == "Ch":
            return _ChumpyArray
        if module in ("builtins", "__builtin__") and name in _HARMLESS_BUILTINS:
            return _HARMLESS_BUILTINS[name]
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            return copyreg._reconstructor  # type: ignore[attr-defined]
        if module == "_codecs" and name == "encode":
            return self._latin1_encode
        raise UnsafePickleError(
            f"{self._source}: refused to unpickle the global '{module}.{name}'; only numpy "
            "arrays, scipy sparse matrices and chumpy arrays are allowed in model files "
            "(the file is not an SMPL model, regressor or parameter file, or it was tampered "
            "with)"
        )

    def _latin1_encode(self, text: str, encoding: str = "utf-8") -> bytes:
        """``_codecs.encode`` as pickles of bytes use it (protocols 0-2), latin-1 only."""
        name = str(encoding).lower().replace("-", "").replace("_", "")
        if not isinstance(text, str) or name not in ("latin1", "iso88591", "l1"):
            raise UnsafePickleError(
                f"{self._source}: refused '_codecs.encode' with encoding {encoding!r}; pickles "
                "of bytes only use it with 'latin1'"
            )
        return text.encode("latin-1")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"{self._source}: refused a persistent id in the pickle ({pid!r}); model files "
            "never contain one"
        )


def _convert_chumpy(obj: Any, *, source: str, memo: dict[int, Any]) -> Any:
    """Replace every chumpy stand-in inside dicts, lists, tuples and sets by a numpy array."""
    key = id(obj)
    if key in memo:
        return memo[key]
    if isinstance(obj, _ChumpyArray):
        state = getattr(obj, "state", None)
        value = state.get("x") if isinstance(state, dict) else None
        if isinstance(value, _ChumpyArray):
            value = _convert_chumpy(value, source=source, memo=memo)
        if not isinstance(value, np.ndarray):
            raise ValueError(
                f"{source}: a chumpy object holds no plain array (its pickled state has no "
                "'x' array); only plain chumpy arrays (Ch) can be read without chumpy"
            )
        result: Any = np.array(value)
    elif isinstance(obj, dict):
        result = {}
        memo[key] = result
        for k, v in obj.items():
            result[k] = _convert_chumpy(v, source=source, memo=memo)
        return result
    elif isinstance(obj, list):
        result = []
        memo[key] = result
        result.extend(_convert_chumpy(v, source=source, memo=memo) for v in obj)
        return result
    elif isinstance(obj, tuple):
        result = tuple(_convert_chumpy(v, source=source, memo=memo) for v in obj)
    else:
        result = obj
    memo[key] = result
    return result


def _check_file(path: str | os.PathLike[str], what: str, where: str) -> Path:
    """Return `path` as a Path, or raise FileNotFoundError naming it and where to get it."""
    file = Path(path)
    if not file.is_file():
        state = "is a folder, not a file" if file.is_dir() else "not found"
        raise FileNotFoundError(f"{what} {state}: {file}. {where}")
    return file


def safe_load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load a pickle that may only contain numpy arrays, scipy sparse matrices and chumpy arrays.

    Python 2 pickles are read with ``encoding="latin1"`` (like smplx does). Besides plain data
    (dicts, lists, tuples, strings, numbers) the pickle may name only numpy's array and scalar
    reconstructors, ``numpy.dtype``, scipy sparse matrix classes, ``chumpy.ch.Ch`` (returned as
    a numpy array of its value ``x``; chumpy is never imported) and a few harmless builtins
    (``set``, ``object``, ...) and helpers that pickles of those use. Nothing is looked up or
    called before the global is checked, so a pickle that asks for ``os.system`` or any other
    callable fails before anything runs.

    Args:
        path: the pickle file.

    Returns:
        The unpickled object, with chumpy arrays replaced by numpy arrays (sparse matrices stay
        sparse).

    Raises:
        FileNotFoundError: if `path` does not exist.
        UnsafePickleError: (a ValueError) if the pickle names a global outside the allow-list;
            the message names the file and the refused global.
        ValueError: if the file is not a readable pickle.
    """
    file = _check_file(path, "pickle file", "")
    data = file.read_bytes()
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), source=str(file)).load()
    except UnsafePickleError:
        raise
    except Exception as error:  # truncated, corrupt or not a pickle at all
        raise ValueError(f"{file}: not a readable pickle ({type(error).__name__}: {error})") from (
            error
        )
    return _convert_chumpy(obj, source=str(file), memo={})


# ---------------------------------------------------------------------------------------------
# SMPL model data
# ---------------------------------------------------------------------------------------------


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class SMPLModelData:
    """The arrays of an SMPL model, in SMPL's own layout (numpy, read-only copies).

    Attributes:
        v_template: (V, 3) rest-pose vertices in metres (SMPL axes: y up, x to the body's left,
            z forward), float64.
        shapedirs: (V, 3, num_betas) shape blend shapes (metres per unit beta), float64.
        posedirs: (V, 3, 207) pose blend shapes, multiplied by the 207 = 23·9 entries of
            (R_j - I) for the body joints j = 1..23 (row-major 3×3), float64.
        J_regressor: (24, V) dense joint regressor: rest joints = J_regressor @ shaped vertices,
            float64.
        weights: (V, 24) linear-blend-skinning weights (rows sum to 1), float64.
        kintree_table: (2, 24) int64; row 0 = parent of each joint (-1 for the root), row 1 =
            joint ids 0..23.
        faces: (F, 3) int64 vertex indices of the triangles, counter-clockwise seen from outside.

    Raises:
        ValueError: on construction, if an array has the wrong number of dimensions, sizes that
            disagree, non-finite values or out-of-range indices.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    kintree_table: np.ndarray
    faces: np.ndarray

    def __post_init__(self) -> None:
        arrays = _validated_model_arrays(
            {
                "v_template": self.v_template,
                "shapedirs": self.shapedirs,
                "posedirs": self.posedirs,
                "J_regressor": self.J_regressor,
                "weights": self.weights,
                "kintree_table": self.kintree_table,
                "faces": self.faces,
            },
            source="SMPLModelData",
        )
        for name, value in arrays.items():
            object.__setattr__(self, name, value)

    @property
    def num_vertices(self) -> int:
        """V, the number of vertices."""
        return int(self.v_template.shape[0])

    @property
    def num_betas(self) -> int:
        """Number of shape components stored (10 in the SMPL 1.0 files, 300 in 1.1)."""
        return int(self.shapedirs.shape[2])

    @property
    def parents(self) -> np.ndarray:
        """(24,) int64 parent of each joint, -1 for the root."""
        return self.kintree_table[0].copy()


def _validated_model_arrays(arrays: Mapping[str, Any], *, source: str) -> dict[str, np.ndarray]:
    """Convert and check the seven model arrays (field names as keys); errors name `source`."""

    def fail(name: str, expected: str, got: str) -> ValueError:
        return ValueError(f"{source}: '{name}' must be {expected}, got {got}")

    out: dict[str, np.ndarray] = {}
    for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        value = arrays[name]
        if scipy.sparse.issparse(value):
            value = value.toarray()
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise fail(name, "a numeric array", f"{type(value).__name__} ({error})") from error
        out[name] = array
    v_template = out["v_template"]
    if v_template.ndim != 2 or v_template.shape[1] != 3 or v_template.shape[0] < 1:
        raise fail("v_template", "an array of shape (V, 3)", f"shape {v_template.shape}")
    num_vertices = v_template.shape[0]
    expected_shapes: dict[str, tuple[tuple[int | None, ...], str]] = {
        "shapedirs": ((num_vertices, 3, None), f"({num_vertices}, 3, num_betas)"),
        "posedirs": ((num_vertices, 3, _NUM_POSE_BASIS), f"({num_vertices}, 3, 207)"),
        "J_regressor": ((_NUM_SMPL_JOINTS, num_vertices), f"(24, {num_vertices})"),
        "weights": ((num_vertices, _NUM_SMPL_JOINTS), f"({num_vertices}, 24)"),
    }
    for name, (shape, text) in expected_shapes.items():
        array = out[name]
        if array.ndim != len(shape) or any(
            s is not None and a != s for a, s in zip(array.shape, shape, strict=True)
        ):
            raise fail(name, f"an array of shape {text}", f"shape {array.shape}")
    if out["shapedirs"].shape[2] < 1:
        raise fail("shapedirs", "at least one shape component", "0")
    for name, array in out.items():
        if not np.isfinite(array).all():
            raise fail(name, "finite", "NaN or infinite values")

    kintree = np.asarray(arrays["kintree_table"])
    if kintree.ndim != 2 or kintree.shape != (2, _NUM_SMPL_JOINTS):
        raise fail("kintree_table", "an array of shape (2, 24)", f"shape {kintree.shape}")
    if not np.issubdtype(kintree.dtype, np.integer) and not np.issubdtype(
        kintree.dtype, np.floating
    ):
        raise fail("kintree_table", "an integer array", f"dtype {kintree.dtype}")
    kintree = kintree.astype(np.float64).astype(np.int64)
    kintree[0, 0] = -1  # the official files store the root's parent as 2**32 - 1
    parents = kintree[0, 1:]
    if ((parents < 0) | (parents >= np.arange(1, _NUM_SMPL_JOINTS))).any():
        raise fail(
            "kintree_table",
            "a tree whose parents precede their children (parent[j] < j)",
            f"parents {kintree[0].tolist()}",
        )
    out["kintree_table"] = kintree

    faces = np.asarray(arrays["faces"])
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] < 1:
        raise fail("faces", "an array of shape (F, 3)", f"shape {faces.shape}")
    if not np.issubdtype(faces.dtype, np.integer):
        raise fail("faces", "an integer array", f"dtype {faces.dtype}")
    faces = faces.astype(np.int64)
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise fail(
            "faces",
            f"vertex indices in 0..{num_vertices - 1}",
            f"indices from {faces.min()} to {faces.max()}",
        )
    out["faces"] = faces
    return {name: _readonly(np.ascontiguousarray(array)) for name, array in out.items()}


def _model_from_mapping(data: Mapping[str, Any], *, source: str) -> SMPLModelData:
    """SMPLModelData from a mapping with the file keys (``f`` for faces); errors name `source`."""
    missing = [key for key in SMPL_MODEL_KEYS if key not in data]
    if missing:
        raise ValueError(
            f"{source}: not an SMPL model file: missing key(s) {missing} (found "
            f"{sorted(map(str, data))}; expected {list(SMPL_MODEL_KEYS)}). {WHERE_SMPL}"
        )
    arrays = {field: data[key] for key, field in SMPL_MODEL_KEYS.items()}
    try:
        checked = _validated_model_arrays(arrays, source=source)
    except ValueError as error:
        raise ValueError(f"{error}. {WHERE_SMPL}") from None
    return SMPLModelData(**checked)


def load_smpl_model(path: str | os.PathLike[str]) -> SMPLModelData:
    """Load an SMPL model from an official pickle or a clean ``.npz``, without chumpy.

    Args:
        path: ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` (read with :func:`safe_load_pickle`; chumpy
            arrays become numpy, the sparse ``J_regressor`` becomes dense) or an ``.npz`` with
            the same keys (``v_template, shapedirs, posedirs, J_regressor, weights,
            kintree_table, f``), e.g. one written by :func:`write_smpl_model_npz` or the
            ``pose-body-convert-smpl`` command. An ``.npz`` is read with ``allow_pickle=False``.

    Returns:
        The model's arrays.

    Raises:
        FileNotFoundError: if `path` does not exist (the message says where SMPL files come
            from).
        UnsafePickleError: if the pickle names a disallowed global.
        ValueError: if a key is missing or an array has the wrong shape (the message names the
            file, the key, the expected and the actual shape).
    """
    file = _check_file(path, "SMPL model file", WHERE_SMPL)
    if file.suffix.lower() == ".npz":
        try:
            with np.load(file, allow_pickle=False) as npz:
                data: Mapping[str, Any] = {key: npz[key] for key in npz.files}
        except ValueError as error:
            raise ValueError(f"{file}: not a clean SMPL .npz file ({error}). {WHERE_SMPL}") from (
                error
            )
    else:
        loaded = safe_load_pickle(file)
        if not isinstance(loaded, dict):
            raise ValueError(
                f"{file}: an SMPL model pickle must hold a dict of arrays, got "
                f"{type(loaded).__name__}. {WHERE_SMPL}"
            )
        data = loaded
    return _model_from_mapping(data, source=str(file))


def _model_file_arrays(model: SMPLModelData) -> dict[str, np.ndarray]:
    return {key: np.asarray(getattr(model, field)) for key, field in SMPL_MODEL_KEYS.items()}


def write_smpl_model_npz(model: SMPLModelData, path: str | os.PathLike[str]) -> Path:
    """Write `model` as a clean ``.npz`` (no pickled objects), atomically.

    Keys are the official file's: ``v_template, shapedirs, posedirs, J_regressor`` (dense),
    ``weights, kintree_table, f``; arrays keep their float64/int64 dtypes. Read it back with
    :func:`load_smpl_model`.

    Returns:
        The path written.
    """
    if not isinstance(model, SMPLModelData):
        raise TypeError(f"`model` must be an SMPLModelData, got {type(model).__name__}")
    arrays = _model_file_arrays(model)
    return atomic_write(path, lambda file: np.savez(file, **arrays))


def write_smpl_model_pickle(model: SMPLModelData, path: str | os.PathLike[str]) -> Path:
    """Write `model` in the official SMPL pickle layout (minus chumpy), atomically.

    A protocol-2 pickle of a dict holding numpy arrays and a scipy ``csc_matrix``
    ``J_regressor``, with the official keys (``v_template, shapedirs, posedirs, J_regressor,
    weights, kintree_table, f``, plus ``J`` = the rest joints, ``bs_type = 'lrotmin'``,
    ``bs_style = 'lbs'``). smplx's own loader and :func:`load_smpl_model` both read it. As in
    the official files, the root's parent in ``kintree_table`` is stored as 2**32 - 1 and the
    faces as uint32.

    Returns:
        The path written.
    """
    if not isinstance(model, SMPLModelData):
        raise TypeError(f"`model` must be an SMPLModelData, got {type(model).__name__}")
    kintree = model.kintree_table.copy()
    kintree[0, 0] = 2**32 - 1
    data = {
        "v_template": np.array(model.v_template),
        "shapedirs": np.array(model.shapedirs),
        "posedirs": np.array(model.posedirs),
        "J_regressor": scipy.sparse.csc_matrix(model.J_regressor),
        "weights": np.array(model.weights),
        "kintree_table": kintree,
        "f": model.faces.astype(np.uint32),
        "J": model.J_regressor @ model.v_template,
        "bs_type": "lrotmin",
        "bs_style": "lbs",
    }
    return atomic_write(path, lambda file: pickle.dump(data, file, protocol=2))


# ---------------------------------------------------------------------------------------------
# Joint regressors
# ---------------------------------------------------------------------------------------------


def load_joint_regressor(
    path: str | os.PathLike[str],
    *,
    num_joints: int | None = None,
    num_vertices: int | None = None,
) -> np.ndarray:
    """Load a joint regressor (J, V): ``SMPL_to_J19.pkl``, ``J_regressor_h36m.npy`` or similar.

    Args:
        path: a pickle (read with :func:`safe_load_pickle`) holding a dense or scipy sparse
            (J, V) matrix (or a chumpy array), an ``.npy`` file (read with
            ``allow_pickle=False``), or an ``.npz`` holding exactly one array.
        num_joints: expected J (19 for ``SMPL_to_J19.pkl``, 17 for the H36M regressor);
            None accepts any.
        num_vertices: expected V (6890 for SMPL); None accepts any.

    Returns:
        (J, V) float64 dense regressor: joints = regressor @ vertices.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file holds something other than one finite 2-D matrix, or its shape
            differs from `num_joints` / `num_vertices`.
    """
    file = _check_file(path, "joint regressor file", WHERE_REGRESSOR)
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            value: Any = np.load(file, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(file, allow_pickle=False) as npz:
                if len(npz.files) != 1:
                    raise ValueError(
                        f"{file}: a regressor .npz must hold exactly one array, found keys "
                        f"{npz.files}. {WHERE_REGRESSOR}"
                    )
                value = npz[npz.files[0]]
        else:
            value = safe_load_pickle(file)
    except UnsafePickleError:
        raise
    except ValueError as error:
        if str(file) in str(error):
            raise
        raise ValueError(f"{file}: not a readable regressor file ({error})") from error
    if scipy.sparse.issparse(value):
        value = value.toarray()
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.number):
        raise ValueError(
            f"{file}: a joint regressor file must hold one numeric (J, V) matrix, got "
            f"{type(value).__name__}. {WHERE_REGRESSOR}"
        )
    regressor = np.array(value, dtype=np.float64)
    expected = f"({'J' if num_joints is None else num_joints}, "
    expected += f"{'V' if num_vertices is None else num_vertices})"
    if (
        regressor.ndim != 2
        or (num_joints is not None and regressor.shape[0] != num_joints)
        or (num_vertices is not None and regressor.shape[1] != num_vertices)
    ):
        raise ValueError(
            f"{file}: joint regressor must have shape {expected}, got {regressor.shape}. "
            f"{WHERE_REGRESSOR}"
        )
    if not np.isfinite(regressor).all():
        raise ValueError(f"{file}: joint regressor holds NaN or infinite values")
    return regressor


def write_joint_regressor(path: str | os.PathLike[str], regressor: np.ndarray) -> Path:
    """Write a (J, V) regressor atomically: ``.npy`` as a plain array, else a pickle.

    The pickle form matches ``SMPL_to_J19.pkl``: a protocol-2 pickle of one dense float64 array.

    Returns:
        The path written.
    """
    array = np.asarray(regressor, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"`regressor` must have shape (J, V), got {array.shape}")
    if Path(path).suffix.lower() == ".npy":
        return atomic_write(path, lambda file: np.save(file, array, allow_pickle=False))
    return atomic_write(path, lambda file: pickle.dump(array, file, protocol=2))


# ---------------------------------------------------------------------------------------------
# Mean parameters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MeanParams:
    """Mean SMPL parameters of ``smpl_mean_params.npz`` (float32, read-only).

    Attributes:
        pose_6d: (144,) the file's ``pose`` key: 24 rotations in 6D, joint-major. In SPIN's file
            each 6-vector is a row-major (3, 2) matrix, i.e. (R00, R01, R10, R11, R20, R21),
            not ProHMR's column layout; ProHMR does not use it (docs/conventions.md#6d-rotations).
        betas: (10,) the ``shape`` key, added to the FC head's betas output.
        camera: (3,) the ``cam`` key (s, tx, ty), added to the FC head's camera output.
    """

    pose_6d: np.ndarray
    betas: np.ndarray
    camera: np.ndarray


_MEAN_KEYS = {"pose": ("pose_6d", 144), "shape": ("betas", 10), "cam": ("camera", 3)}


def _mean_array(name: str, value: Any, size: int, source: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{source}: '{name}' must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float32).reshape(-1) if array.shape in ((size,), (1, size)) else array
    if array.shape != (size,):
        raise ValueError(f"{source}: '{name}' must have shape ({size},), got {np.shape(value)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{source}: '{name}' holds NaN or infinite values")
    return _readonly(np.ascontiguousarray(array, dtype=np.float32))


def load_mean_params(path: str | os.PathLike[str]) -> MeanParams:
    """Load ``smpl_mean_params.npz`` (keys ``pose`` (144,), ``shape`` (10,), ``cam`` (3,)).

    Arrays of shape (1, n) are accepted and flattened. Read with ``allow_pickle=False``.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if a key is missing or has the wrong shape (message names file and key).
    """
    file = _check_file(path, "mean-parameter file", WHERE_MEAN_PARAMS)
    try:
        with np.load(file, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (ValueError, OSError) as error:
        raise ValueError(f"{file}: not a readable .npz file ({error}). {WHERE_MEAN_PARAMS}") from (
            error
        )
    missing = [key for key in _MEAN_KEYS if key not in data]
    if missing:
        raise ValueError(
            f"{file}: missing key(s) {missing} (found {sorted(data)}; expected 'pose' (144,), "
            f"'shape' (10,), 'cam' (3,)). {WHERE_MEAN_PARAMS}"
        )
    try:
        values = {
            field: _mean_array(key, data[key], size, str(file))
            for key, (field, size) in _MEAN_KEYS.items()
        }
    except ValueError as error:
        raise ValueError(f"{error}. {WHERE_MEAN_PARAMS}") from None
    return MeanParams(**values)


def write_mean_params(
    path: str | os.PathLike[str], *, pose_6d: Any, betas: Any, camera: Any
) -> Path:
    """Write a ``smpl_mean_params.npz`` atomically (keys ``pose``, ``shape``, ``cam``; float32).

    Args:
        path: destination file (written exactly there, no suffix added).
        pose_6d: (144,) array-like or tensor.
        betas: (10,) array-like or tensor.
        camera: (3,) array-like or tensor (s, tx, ty).

    Returns:
        The path written.

    Raises:
        ValueError: if a shape differs from the one documented or a value is not finite.
    """
    arrays = {
        "pose": _mean_array("pose_6d", pose_6d, 144, "write_mean_params"),
        "shape": _mean_array("betas", betas, 10, "write_mean_params"),
        "cam": _mean_array("camera", camera, 3, "write_mean_params"),
    }
    return atomic_write(path, lambda file: np.savez(file, **arrays))
