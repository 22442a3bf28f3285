"""OBJ writing and reading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose_body import read_obj, write_obj


def test_a_mesh_round_trips(tmp_path) -> None:
    vertices = np.random.default_rng(0).normal(size=(5, 3))
    faces = np.array([[0, 1, 2], [2, 3, 4]])
    path = write_obj(tmp_path / "sub" / "m.obj", torch.from_numpy(vertices), faces, comment="a\nb")
    text = path.read_text()
    assert text.startswith("# a\n# b\nv ") and "\nf 1 2 3\nf 3 4 5\n" in text
    read_vertices, read_faces = read_obj(path)
    np.testing.assert_allclose(read_vertices, vertices, atol=1e-6)
    np.testing.assert_array_equal(read_faces, faces)


def test_faces_with_texture_and_normal_indices_read(tmp_path) -> None:
    path = tmp_path / "m.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1/1/1 2/2/1 3//1\n")
    _, faces = read_obj(path)
    np.testing.assert_array_equal(faces, [[0, 1, 2]])


def test_bad_meshes_are_refused_with_the_argument_named(tmp_path) -> None:
    with pytest.raises(ValueError, match="`vertices` must have shape"):
        write_obj(tmp_path / "m.obj", np.zeros((3, 2)), [[0, 1, 2]])
    with pytest.raises(ValueError, match=r"`faces` index vertices 0\.\.2"):
        write_obj(tmp_path / "m.obj", np.zeros((3, 3)), [[0, 1, 3]])
    with pytest.raises(ValueError, match="non-finite"):
        write_obj(tmp_path / "m.obj", np.full((3, 3), np.nan), [[0, 1, 2]])
    assert not (tmp_path / "m.obj").exists()
    (tmp_path / "q.obj").write_text("v 0 0 0\nf 1 2 3 4\n")
    with pytest.raises(ValueError, match="line 2: a face must be a triangle"):
        read_obj(tmp_path / "q.obj")
