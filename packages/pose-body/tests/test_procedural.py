import pickle

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph
import torch
from smplx.vertex_ids import vertex_ids

from pose_body import (
    BodyModel,
    load_joint_regressor,
    load_smpl_model,
    procedural_body_model,
    write_procedural_model,
)
from pose_body.procedural import procedural_body_model as cached_builder
from pose_geometry import SMPL_JOINT_NAMES, SMPL_PARENTS

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
SMPLH = vertex_ids["smplh"]


def rest_joints(model):
    return model.J_regressor @ model.v_template


def test_format_and_sizes(procedural):
    model = procedural.model
    assert model.v_template.shape == (6890, 3)
    assert model.shapedirs.shape == (6890, 3, 10)
    assert model.posedirs.shape == (6890, 3, 207) and not model.posedirs.any()
    assert model.J_regressor.shape == (24, 6890)
    assert model.weights.shape == (6890, 24)
    assert model.kintree_table[0].tolist() == list(SMPL_PARENTS)
    assert model.faces.max() == 6889 and np.unique(model.faces).size == 6890  # every vertex used
    assert procedural.extra_regressor.shape == (19, 6890)
    assert procedural.h36m_regressor.shape == (17, 6890)


def test_deterministic_and_cached():
    assert procedural_body_model() is procedural_body_model()
    fresh = cached_builder.__wrapped__()
    cached = procedural_body_model()
    for name in ("v_template", "shapedirs", "J_regressor", "weights", "faces"):
        np.testing.assert_array_equal(getattr(fresh.model, name), getattr(cached.model, name))
    np.testing.assert_array_equal(fresh.extra_regressor, cached.extra_regressor)


def test_every_part_is_a_closed_consistently_oriented_surface(procedural):
    faces = procedural.model.faces
    verts = procedural.model.v_template
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    # Closed and consistently oriented: every directed edge appears once, its reverse once.
    directed = {tuple(e) for e in edges.tolist()}
    assert len(directed) == len(edges)
    assert all((b, a) in directed for a, b in directed)
    graph = scipy.sparse.coo_matrix(
        (np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(6890, 6890)
    )
    num_parts, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    assert (
        num_parts == 16
    )  # torso, neck, head, nose and pairs of ears, legs, feet, arms, hands, thumbs
    # Outward orientation: the signed volume of every part is positive.
    a, b, c = (verts[faces[:, i]] for i in range(3))
    signed = np.einsum("fi,fi->f", a, np.cross(b, c)) / 6.0
    volume = np.bincount(labels[faces[:, 0]], weights=signed, minlength=num_parts)
    assert (volume > 0).all()
    assert 0.05 < volume.sum() < 0.09  # m³: a 1.7 m adult has about 0.065 m³ (parts overlap)


def test_proportions_of_the_rest_pose(procedural):
    model = procedural.model
    v = model.v_template
    joints = rest_joints(model)
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 < height < 1.8
    arm_span = v[:, 0].max() - v[:, 0].min()
    assert 0.95 < arm_span / height < 1.1  # arm span is about the body height
    for left, right in [
        ("left_hip", "right_hip"),
        ("left_shoulder", "right_shoulder"),
        ("left_wrist", "right_wrist"),
        ("left_foot", "right_foot"),
    ]:
        assert joints[J[left], 0] > 0.03 and np.allclose(
            joints[J[left]] * [-1, 1, 1], joints[J[right]]
        )
    chain = [
        "left_ankle",
        "left_knee",
        "left_hip",
        "pelvis",
        "spine1",
        "spine2",
        "spine3",
        "neck",
        "head",
    ]
    heights = [joints[J[n], 1] for n in chain]
    assert heights == sorted(heights)
    leg = np.linalg.norm(joints[J["left_hip"]] - joints[J["left_knee"]])
    shin = np.linalg.norm(joints[J["left_knee"]] - joints[J["left_ankle"]])
    upper_arm = np.linalg.norm(joints[J["left_shoulder"]] - joints[J["left_elbow"]])
    forearm = np.linalg.norm(joints[J["left_elbow"]] - joints[J["left_wrist"]])
    assert (
        0.35 < leg < 0.45 and 0.35 < shin < 0.45 and 0.22 < upper_arm < 0.3 and 0.2 < forearm < 0.28
    )
    assert joints[J["left_foot"], 2] > joints[J["left_ankle"], 2] + 0.1  # the foot points forward


def test_vertex_joints_sit_at_their_anatomical_spots(procedural):
    v = procedural.model.v_template
    joints = rest_joints(procedural.model)
    nose, leye, reye, lear, rear = (v[SMPLH[k]] for k in ("nose", "leye", "reye", "lear", "rear"))
    head = v[v[:, 1] > 0.32]
    assert nose[2] == pytest.approx(head[:, 2].max())  # the most forward point of the head
    assert leye[0] > 0.01 > -0.01 > reye[0] and leye[1] > nose[1] and leye[2] > lear[2] + 0.05
    assert lear[0] > leye[0] + 0.03 and rear[0] < reye[0] - 0.03
    for side, sign in (("L", 1), ("R", -1)):
        big, small, heel = (v[SMPLH[side + k]] for k in ("BigToe", "SmallToe", "Heel"))
        ankle = joints[J[("left" if sign > 0 else "right") + "_ankle"]]
        assert sign * big[0] > 0 and sign * small[0] > sign * big[0]  # big toe is medial
        assert big[2] > ankle[2] + 0.15 and heel[2] < ankle[2] - 0.04
        assert max(big[1], small[1], heel[1]) < ankle[1] - 0.05  # near the ground
    for side, sign in (("l", 1), ("r", -1)):
        wrist = joints[J[("left" if sign > 0 else "right") + "_wrist"]]
        tips = [v[SMPLH[side + f]] for f in ("thumb", "index", "middle", "ring", "pinky")]
        assert all(sign * (t[0] - wrist[0]) > 0.05 for t in tips)
        assert tips[1][2] > tips[2][2] > tips[3][2] > tips[4][2]  # index to pinky, front to back
        assert tips[0][2] > tips[1][2]  # the thumb points forward (palms down)


def test_joint_regressors_average_rings(procedural):
    model = procedural.model
    for regressor in (model.J_regressor, procedural.extra_regressor, procedural.h36m_regressor):
        np.testing.assert_allclose(regressor.sum(1), 1.0)
        assert (regressor >= 0).all()
        assert ((regressor > 0).sum(1) <= 40).all()  # sparse: one ring each
    # The extra keypoints lie near the matching SMPL joints (same anatomy, e.g. LSP knee).
    extra = procedural.extra_regressor @ model.v_template
    joints = rest_joints(model)
    pairs = {
        1: J["right_knee"],
        4: J["left_knee"],
        7: J["right_elbow"],
        11: J["left_wrist"],
        0: J["right_ankle"],
    }
    for e, j in pairs.items():
        assert np.linalg.norm(extra[e] - joints[j]) < 0.02
    assert extra[13, 1] > joints[J["head"], 1] + 0.1  # top of head
    h36m = procedural.h36m_regressor @ model.v_template
    assert h36m[0, 1] < h36m[7, 1] < h36m[8, 1] < h36m[9, 1] < h36m[10, 1]  # pelvis..head
    assert h36m[4, 0] > 0 > h36m[1, 0]  # left hip on +x


def test_skinning_weights_blend_near_joints(procedural):
    model = procedural.model
    w = model.weights
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert (w >= 0).all()
    v = model.v_template
    joints = rest_joints(model)
    knee = joints[J["left_knee"]]
    near = np.linalg.norm(v - knee, axis=1) < 0.07
    assert (w[near][:, [J["left_hip"], J["left_knee"]]].min(1) > 0.05).any()  # blended at the knee
    mid_thigh = (np.abs(v[:, 1] - (knee[1] + 0.2)) < 0.02) & (v[:, 0] > 0.03)
    assert np.allclose(w[mid_thigh, J["left_hip"]], 1.0)  # rigid between joints
    assert w[:, J["left_hand"]].max() == 1.0 and w[:, J["head"]].max() == 1.0


def test_shape_directions_change_the_body_plausibly(procedural):
    bm = BodyModel(procedural.model, extra_regressor=procedural.extra_regressor)
    eye = torch.eye(3).expand(1, 23, 3, 3)

    def body(k, value):
        betas = torch.zeros(1, 10)
        betas[0, k] = value
        return bm(global_orient=torch.eye(3)[None], body_pose=eye, betas=betas)

    def height(out):
        return (out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min()).item()

    def length(out, a, b):
        return (out.smpl_joints[0, J[a]] - out.smpl_joints[0, J[b]]).norm().item()

    def waist(out):
        band = out.vertices[0][(out.vertices[0, :, 1] + 0.12).abs() < 0.01]
        return (band[:, 0].max() - band[:, 0].min()).item()

    base = body(0, 0.0)
    assert height(body(0, 2.0)) > height(base) + 0.1 > height(body(0, -2.0)) + 0.2
    assert waist(body(1, 2.0)) > waist(base) * 1.15
    assert (
        length(body(2, 2.0), "left_hip", "left_ankle")
        > length(base, "left_hip", "left_ankle") + 0.08
    )
    assert (
        length(body(4, 2.0), "left_shoulder", "right_shoulder")
        > length(base, "left_shoulder", "right_shoulder") + 0.05
    )
    assert (
        length(body(6, 2.0), "left_shoulder", "left_wrist")
        > length(base, "left_shoulder", "left_wrist") + 0.05
    )
    moved = [np.abs(procedural.model.shapedirs[:, :, k]).max() for k in range(10)]
    assert all(0.01 < m < 0.1 for m in moved)  # every direction does something, nothing wild


def test_written_files_read_by_both_loaders(tmp_path):
    files = write_procedural_model(tmp_path / "models")
    assert files.model.name == "SMPL_NEUTRAL.pkl"
    raw = pickle.loads(files.model.read_bytes(), encoding="latin1")  # noqa: S301
    assert scipy.sparse.issparse(raw["J_regressor"])
    assert set(raw) >= {
        "v_template",
        "shapedirs",
        "posedirs",
        "J_regressor",
        "weights",
        "kintree_table",
        "f",
    }
    model = load_smpl_model(files.model)
    np.testing.assert_array_equal(model.v_template, procedural_body_model().model.v_template)
    extra = pickle.loads(files.extra_regressor.read_bytes(), encoding="latin1")  # noqa: S301
    assert isinstance(extra, np.ndarray) and extra.shape == (19, 6890)
    h36m = load_joint_regressor(files.h36m_regressor, num_joints=17, num_vertices=6890)
    np.testing.assert_array_equal(h36m, procedural_body_model().h36m_regressor)


def test_body_model_procedural_is_the_model_with_both_regressors(procedural):
    body = BodyModel.procedural()
    assert body.has_extra_regressor and body.has_h36m_regressor and body.num_betas == 10
    np.testing.assert_array_equal(
        body.joint_regressor_extra.numpy(), procedural.extra_regressor.astype(np.float32)
    )
    np.testing.assert_array_equal(body.smpl.faces_tensor.numpy(), procedural.model.faces)
    double = BodyModel.procedural(num_betas=5, dtype=torch.float64)
    assert double.num_betas == 5 and double.joint_regressor_extra.dtype == torch.float64
