import numpy as np
import pytest
import smplx
import torch

from pose_body import BodyModel, BodyOutput, JointsOutput, write_procedural_model
from pose_geometry import (
    KEYPOINT_NAMES_44,
    SMPLX_JOINTS_TO_BODY25,
    axis_angle_to_rotmat,
    rotmat_to_axis_angle,
)
from pose_geometry.testing import assert_close, random_rotmat


def random_inputs(batch, generator, *, dtype=torch.float32, scale=0.6):
    """Random rotation matrices (global orient uniform, body joints moderate) and shapes."""
    root = random_rotmat(*batch, dtype=dtype, generator=generator)
    body = axis_angle_to_rotmat(
        scale * torch.randn(*batch, 23, 3, generator=generator, dtype=dtype)
    )
    betas = 1.5 * torch.randn(*batch, 10, generator=generator, dtype=dtype)
    return root, body, betas


def test_fast_path_equals_full_path_on_random_poses_and_shapes(body_model, generator):
    root, body, betas = random_inputs((64,), generator, scale=1.0)
    transl = torch.randn(64, 3, generator=generator)
    full = body_model(global_orient=root, body_pose=body, betas=betas, transl=transl)
    fast = body_model.keypoints_only(global_orient=root, body_pose=body, betas=betas, transl=transl)
    for name in ("smpl_joints", "keypoints", "h36m_joints"):
        difference = (getattr(full, name) - getattr(fast, name)).abs().max().item()
        assert difference <= 1e-5, (name, difference)


@pytest.mark.parametrize("dense_rotation", [False, True])
def test_fast_path_equals_full_path_with_nonzero_pose_blend_shapes(
    procedural, generator, dense_rotation
):
    """The procedural model has zero posedirs; a copy with random ones checks that term too.

    Both ways of applying the bone rotations (per pair, dense layout) are checked.
    """
    rng = np.random.default_rng(0)
    model = procedural.model
    fields = {
        name: getattr(model, name)
        for name in ("v_template", "shapedirs", "J_regressor", "kintree_table", "faces")
    }
    weights = model.weights + 0.05 * rng.random(model.weights.shape) * (
        rng.random(model.weights.shape) < 0.1
    )
    weights /= weights.sum(1, keepdims=True)
    noisy = type(model)(
        **fields, posedirs=0.01 * rng.standard_normal((6890, 3, 207)), weights=weights
    )
    bm = BodyModel(
        noisy,
        extra_regressor=procedural.extra_regressor,
        h36m_regressor=procedural.h36m_regressor,
        dtype=torch.float64,
    )
    bm.fast.dense_rotation = dense_rotation
    root, body, betas = random_inputs((16,), generator, dtype=torch.float64, scale=1.0)
    full = bm(global_orient=root, body_pose=body, betas=betas)
    betas.requires_grad_()
    fast = bm.keypoints_only(global_orient=root, body_pose=body, betas=betas)
    fast.keypoints.sum().backward()  # differentiable either way
    assert torch.isfinite(betas.grad).all()
    assert_close(fast.keypoints, full.keypoints)
    assert_close(fast.h36m_joints, full.h36m_joints)
    assert_close(fast.smpl_joints, full.smpl_joints)


def test_matches_smplx_reading_the_written_pickle(body_model, tmp_path, generator):
    files = write_procedural_model(tmp_path)
    reference = smplx.SMPL(model_path=str(files.model))  # smplx's own (unrestricted) loader
    pose = 0.5 * torch.randn(3, 72, generator=generator)
    betas = torch.randn(3, 10, generator=generator)
    ours = body_model(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas)
    theirs = reference(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas)
    assert_close(ours.vertices, theirs.vertices)
    assert_close(ours.smpl_joints, theirs.joints[:, :24])
    assert_close(ours.keypoints[:, :25], theirs.joints[:, list(SMPLX_JOINTS_TO_BODY25)])
    extra = torch.einsum(
        "jv,bvc->bjc",
        torch.as_tensor(np.load(files.h36m_regressor), dtype=torch.float32),
        theirs.vertices,
    )
    assert_close(ours.h36m_joints, extra)


def test_from_files_equals_in_memory(body_model, tmp_path, generator):
    files = write_procedural_model(tmp_path)
    loaded = BodyModel.from_files(
        files.model,
        extra_regressor_path=files.extra_regressor,
        h36m_regressor_path=files.h36m_regressor,
    )
    root, body, betas = random_inputs((4,), generator)
    a = loaded.keypoints_only(global_orient=root, body_pose=body, betas=betas)
    b = body_model.keypoints_only(global_orient=root, body_pose=body, betas=betas)
    torch.testing.assert_close(a.keypoints, b.keypoints, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match=r"SMPL_to_J19\.pkl"):
        BodyModel.from_files(files.model, extra_regressor_path=tmp_path / "SMPL_to_J19.pkl.missing")


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_shapes_and_dtypes_of_every_output(body_model, generator, batch):
    root, body, betas = random_inputs(batch, generator)
    full = body_model(global_orient=root, body_pose=body, betas=betas)
    fast = body_model.keypoints_only(global_orient=root, body_pose=body, betas=betas)
    assert isinstance(full, BodyOutput) and isinstance(fast, JointsOutput)
    assert full.vertices.shape == (*batch, 6890, 3)
    for out in (full, fast):
        assert out.smpl_joints.shape == (*batch, 24, 3)
        assert out.keypoints.shape == (*batch, 44, 3)
        assert out.h36m_joints.shape == (*batch, 17, 3)
        for value in (out.smpl_joints, out.keypoints, out.h36m_joints):
            assert value.dtype == torch.float32 and torch.isfinite(value).all()
    assert body_model.faces.shape == (13716, 3) and body_model.faces.dtype == torch.int64
    assert body_model.parents.tolist()[:4] == [-1, 0, 0, 0]


def test_batch_layouts_give_the_same_values(body_model, generator):
    root, body, betas = random_inputs((2, 3), generator)
    grid = body_model.keypoints_only(global_orient=root, body_pose=body, betas=betas)
    flat = body_model.keypoints_only(
        global_orient=root.reshape(6, 1, 3, 3),
        body_pose=body.reshape(6, 23, 3, 3),
        betas=betas.reshape(6, 10),
    )
    single = body_model.keypoints_only(
        global_orient=root[1, 2], body_pose=body[1, 2], betas=betas[1, 2]
    )
    assert_close(grid.keypoints.reshape(6, 44, 3), flat.keypoints)
    assert_close(grid.keypoints[1, 2], single.keypoints)


def test_axis_angle_and_rotation_matrices_agree(body_model, generator):
    root, body, betas = random_inputs((4,), generator)
    root_aa, body_aa = rotmat_to_axis_angle(root), rotmat_to_axis_angle(body)
    by_matrix = body_model(global_orient=root, body_pose=body, betas=betas)
    by_vector = body_model(global_orient=root_aa, body_pose=body_aa.reshape(4, 69), betas=betas)
    by_joint = body_model.keypoints_only(
        global_orient=root_aa[:, None], body_pose=body_aa, betas=betas
    )
    assert_close(by_vector.vertices, by_matrix.vertices, atol=2e-5)
    assert_close(by_joint.keypoints, by_matrix.keypoints, atol=2e-5)


def test_betas_and_translation_broadcast(body_model, generator):
    root, body, betas = random_inputs((3,), generator)
    shared = body_model.keypoints_only(
        global_orient=root, body_pose=body, betas=betas[0], transl=torch.tensor([0.0, 0.0, 5.0])
    )
    repeated = body_model.keypoints_only(
        global_orient=root, body_pose=body, betas=betas[:1].expand(3, 10)
    )
    assert_close(shared.keypoints, repeated.keypoints + torch.tensor([0.0, 0.0, 5.0]))
    assert_close(shared.smpl_joints, repeated.smpl_joints + torch.tensor([0.0, 0.0, 5.0]))


def test_keypoint_layout(body_model, procedural):
    """Keypoints 0..24 are the mapped SMPL/vertex joints; 25..43 the extra regressor rows."""
    eye = torch.eye(3).expand(1, 23, 3, 3)
    out = body_model(global_orient=torch.eye(3)[None], body_pose=eye, betas=torch.zeros(1, 10))
    kp, joints, verts = out.keypoints[0], out.smpl_joints[0], out.vertices[0]
    name = {n: i for i, n in enumerate(KEYPOINT_NAMES_44)}
    assert_close(kp[name["OP MidHip"]], joints[0])
    assert_close(kp[name["OP Neck"]], joints[12])
    assert_close(kp[name["OP RWrist"]], joints[21])
    assert_close(kp[name["OP LKnee"]], joints[4])
    assert_close(kp[name["OP Nose"]], verts[332])
    assert_close(kp[name["OP LHeel"]], verts[3387])
    assert_close(kp[name["OP RBigToe"]], verts[6617])
    extra = torch.tensor(procedural.extra_regressor, dtype=torch.float32) @ verts
    assert_close(kp[25:], extra)
    # Anatomy of the rest pose: the subject's left is +x, up is +y, the face looks along +z.
    assert kp[name["OP LShoulder"], 0] > 0 > kp[name["OP RShoulder"], 0]
    assert kp[name["Top of Head (LSP)"], 1] > kp[name["OP Nose"], 1] > kp[name["Pelvis (MPII)"], 1]
    assert kp[name["OP Nose"], 2] > kp[name["OP LEar"], 2]
    assert kp[name["OP LBigToe"], 2] > kp[name["OP LHeel"], 2]


def test_gradients_reach_every_input(body_model, generator):
    root, body, betas = random_inputs((2,), generator)
    root_aa = rotmat_to_axis_angle(root).requires_grad_()
    aa = rotmat_to_axis_angle(body).requires_grad_()
    betas.requires_grad_()
    transl = torch.zeros(2, 3, requires_grad=True)
    out = body_model.keypoints_only(global_orient=root_aa, body_pose=aa, betas=betas, transl=transl)
    out.keypoints.square().sum().backward()
    for value in (root_aa, aa, betas, transl):
        assert (
            value.grad is not None
            and torch.isfinite(value.grad).all()
            and value.grad.abs().sum() > 0
        )


def test_gradients_of_fast_and_full_paths_agree(body_model, generator):
    root, body, betas = random_inputs((3,), generator)
    grads = []
    for method in (body_model.forward, body_model.keypoints_only):
        beta = betas.clone().requires_grad_()
        pose = body.clone().requires_grad_()
        method(global_orient=root, body_pose=pose, betas=beta).keypoints.sum().backward()
        grads.append((pose.grad, beta.grad))
    assert_close(grads[0][0], grads[1][0], atol=1e-4)
    assert_close(grads[0][1], grads[1][1], atol=1e-4)


def test_float64_model(procedural, generator):
    bm = BodyModel(
        procedural.model, extra_regressor=procedural.extra_regressor, dtype=torch.float64
    )
    root, body, betas = random_inputs((3,), generator, dtype=torch.float64)
    full = bm(global_orient=root, body_pose=body, betas=betas)
    fast = bm.keypoints_only(global_orient=root, body_pose=body, betas=betas)
    assert (
        full.vertices.dtype == torch.float64
        and full.h36m_joints is None
        and fast.h36m_joints is None
    )
    assert_close(fast.keypoints, full.keypoints)
    with pytest.raises(
        TypeError,
        match=r"`betas` has dtype torch\.float32 but the body model's buffers are torch\.float64",
    ):
        bm(global_orient=root, body_pose=body, betas=betas.float())


def test_without_extra_regressor_the_extra_keypoints_are_nan(procedural):
    bm = BodyModel(procedural.model, extra_regressor=None)
    eye = torch.eye(3).expand(2, 23, 3, 3)
    for out in (
        bm(global_orient=torch.eye(3).expand(2, 3, 3), body_pose=eye, betas=torch.zeros(2, 10)),
        bm.keypoints_only(
            global_orient=torch.eye(3).expand(2, 3, 3), body_pose=eye, betas=torch.zeros(2, 10)
        ),
    ):
        assert (
            torch.isnan(out.keypoints[:, 25:]).all() and torch.isfinite(out.keypoints[:, :25]).all()
        )


def test_empty_batch(body_model):
    out = body_model(
        global_orient=torch.zeros(0, 3), body_pose=torch.zeros(0, 69), betas=torch.zeros(0, 10)
    )
    assert out.vertices.shape == (0, 6890, 3) and out.keypoints.shape == (0, 44, 3)
    fast = body_model.keypoints_only(
        global_orient=torch.zeros(0, 3), body_pose=torch.zeros(0, 69), betas=torch.zeros(0, 10)
    )
    assert fast.keypoints.shape == (0, 44, 3)


def test_module_moves_with_to(procedural, generator):
    bm = BodyModel(procedural.model, extra_regressor=procedural.extra_regressor).to(torch.float64)
    root, body, betas = random_inputs((2,), generator, dtype=torch.float64)
    out = bm.keypoints_only(global_orient=root, body_pose=body, betas=betas)
    assert out.keypoints.dtype == torch.float64
    # Both paths now compute in float64 from float32-rounded buffers: float32-level agreement.
    full = bm(global_orient=root, body_pose=body, betas=betas)
    assert_close(out.keypoints, full.keypoints.float())
    assert not list(bm.parameters())
    assert not any(key.startswith("fast.") for key in bm.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            dict(body_pose=torch.zeros(2, 22, 3, 3)),
            ValueError,
            r"`body_pose` must have shape \(\.\.\., 23, 3, 3\) \(rotation matrices\), \(\.\.\., 69\) or \(\.\.\., 23, 3\) \(axis-angle\), got \(2, 22, 3, 3\)",
        ),
        (
            dict(global_orient=torch.zeros(2, 3)),
            ValueError,
            r"`global_orient` must have shape \(\.\.\., 3, 3\) or \(\.\.\., 1, 3, 3\)",
        ),
        (dict(global_orient=torch.zeros(3, 3, 3)), ValueError, r"batch dimensions \(2,\)"),
        (
            dict(betas=torch.zeros(2, 11)),
            ValueError,
            r"`betas` must have shape \(\.\.\., 10\), got \(2, 11\)",
        ),
        (
            dict(betas=torch.zeros(3, 10)),
            ValueError,
            r"`betas` has shape \(3, 10\), whose batch dimensions do not broadcast",
        ),
        (dict(transl=torch.zeros(2, 2)), ValueError, r"`transl` must have shape \(\.\.\., 3\)"),
        (dict(betas=np.zeros((2, 10))), TypeError, r"`betas` must be a torch\.Tensor"),
        (
            dict(betas=torch.zeros(2, 10, dtype=torch.long)),
            TypeError,
            r"`betas` must be a floating-point tensor",
        ),
    ],
)
def test_rejects_bad_inputs(body_model, kwargs, error, message):
    inputs = dict(
        global_orient=torch.eye(3).expand(2, 3, 3),
        body_pose=torch.eye(3).expand(2, 23, 3, 3),
        betas=torch.zeros(2, 10),
    )
    inputs.update(kwargs)
    with pytest.raises(error, match=message):
        body_model(**inputs)
    with pytest.raises(error, match=message):
        body_model.keypoints_only(**inputs)


def test_rejects_bad_construction(procedural):
    with pytest.raises(
        ValueError, match=r"`extra_regressor` must have shape \(19, 6890\), got \(17, 6890\)"
    ):
        BodyModel(procedural.model, extra_regressor=procedural.h36m_regressor)
    with pytest.raises(ValueError, match=r"`num_betas` must be in 1\.\.10"):
        BodyModel(procedural.model, extra_regressor=None, num_betas=11)
    with pytest.raises(TypeError, match=r"`model` must be an SMPLModelData"):
        BodyModel({"v_template": 0}, extra_regressor=None)


def test_construction_prints_nothing(procedural, capsys):
    BodyModel(procedural.model, extra_regressor=None)
    assert capsys.readouterr().out == ""
