"""Triangle meshes as Wavefront OBJ text: the format Blender, trimesh and aitviewer open as is.

Only vertex positions (``v x y z``) and triangles (``f i j k``, 1-based indices) are written;
reading accepts the same subset plus the ``f i/t/n`` index forms other programs write, so a
mesh exported here and touched by another tool still reads back.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from pose_body._atomic import atomic_write

__all__ = ["read_obj", "write_obj"]


def _array(name: str, value: object, dtype: type, columns: int) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f"`{name}` must have shape (n, {columns}), got {array.shape}")
    if dtype is float and not np.isfinite(array).all():
        raise ValueError(f"`{name}` has non-finite values (NaN or inf)")
    return array.astype(np.float64 if dtype is float else np.int64)


def write_obj(
    path: str | os.PathLike[str],
    vertices: object,
    faces: object,
    *,
    comment: str | None = None,
) -> Path:
    """Write one triangle mesh as an OBJ file, atomically.

    Args:
        path: the ``.obj`` file to write (its folder is created).
        vertices: (V, 3) positions (NumPy array or tensor), written as given (no axis change).
        faces: (F, 3) 0-based vertex indices (written 1-based, as OBJ counts).
        comment: an optional first line (``# comment``), e.g. the frame and units.

    Returns:
        The written path.

    Raises:
        ValueError: naming the argument if a shape is wrong, a vertex is not finite or a face
            index is out of range.
    """
    verts = _array("vertices", vertices, float, 3)
    tris = _array("faces", faces, int, 3)
    if tris.size and (tris.min() < 0 or tris.max() >= len(verts)):
        raise ValueError(
            f"`faces` index vertices 0..{len(verts) - 1}, got indices {tris.min()}..{tris.max()}"
        )
    text = io.StringIO()
    if comment:
        text.write("".join(f"# {line}\n" for line in comment.splitlines()))
    np.savetxt(text, verts, fmt="v %.6f %.6f %.6f")
    np.savetxt(text, tris + 1, fmt="f %d %d %d")
    data = text.getvalue().encode("ascii")
    return atomic_write(path, lambda file: file.write(data))


def read_obj(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """The (V, 3) float64 vertices and (F, 3) int64 0-based triangles of an OBJ file.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file and line for a malformed ``v`` or ``f`` line or a face
            that is not a triangle.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"OBJ file not found: {source}")
    vertices: list[list[float]] = []
    faces: list[list[int]] = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] not in ("v", "f"):
            continue
        try:
            if parts[0] == "v":
                if len(parts) < 4:
                    raise ValueError("a vertex needs three coordinates")
                vertices.append([float(v) for v in parts[1:4]])
            else:
                if len(parts) != 4:
                    raise ValueError(f"a face must be a triangle, got {len(parts) - 1} indices")
                faces.append([int(p.split("/")[0]) - 1 for p in parts[1:]])
        except ValueError as error:
            raise ValueError(f"{source}, line {number}: {error}: {line!r}") from None
    return (
        np.asarray(vertices, dtype=np.float64).reshape(-1, 3),
        np.asarray(faces, dtype=np.int64).reshape(-1, 3),
    )
