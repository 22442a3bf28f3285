"""SMPLify-style baseline on the toy body model with a synthetic GMM."""

import math

import pytest
import torch

from pose_fitting import (
    TOO_FEW_KEYPOINTS,
    AdamOptions,
    GaussianMixturePrior,
    SMPLifyOptions,
    StoppingRules,
    angle_prior,
    fit_smplify,
)
from pose_fitting.testing import synthetic_gaussian_mixture, toy_keypoint_problem
from pose_geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

F64 = torch.float64


def setup(batch_size=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    p = toy_keypoint_problem(batch_size=batch_size, generator=g)
    prior = GaussianMixturePrior.from_mapping(synthetic_gaussian_mixture(generator=g))
    go, bp = p.decoder(p.z)
    noisy = axis_angle_to_rotmat(
        rotmat_to_axis_angle(bp) + 0.15 * torch.randn(batch_size, 23, 3, dtype=F64, generator=g)
    )
    init = {
        "init_global_orient": go,
        "init_body_pose": noisy,
        "init_betas": torch.zeros(batch_size, 10, dtype=F64),
        "init_camera_translation": p.camera_translation
        + torch.tensor([0.05, 0.05, 2.0], dtype=F64),
    }
    return p, prior, init


def run(p, prior, init, options, keypoints_2d=None):
    return fit_smplify(
        body_model=p.body_model,
        pose_prior=prior,
        keypoints_2d=p.keypoints_2d if keypoints_2d is None else keypoints_2d,
        focal_px=p.focal_px,
        image_size_px=p.image_size_px,
        options=options,
        **init,
    )


def pixel_error(projected, keypoints_2d):
    return (projected - keypoints_2d[..., :2]).norm(dim=-1).mean(dim=-1)


@pytest.mark.parametrize("representation", ["axis_angle", "rot6d"])
def test_reduces_the_reprojection_error_from_a_perturbed_regression(representation):
    p, prior, init = setup()
    zero = SMPLifyOptions(
        pose_representation=representation,
        camera_stage=False,
        stopping=StoppingRules(max_iterations=0),
    )
    before = run(p, prior, init, zero)
    options = SMPLifyOptions(
        pose_representation=representation,
        stopping=StoppingRules(
            max_iterations=40,
            relative_tolerance=None,
            gradient_tolerance=None,
            stop_on_increase=False,
        ),
    )
    after = run(p, prior, init, options)
    assert (
        pixel_error(after.projected_keypoints_2d, p.keypoints_2d)
        < 0.5 * pixel_error(before.projected_keypoints_2d, p.keypoints_2d)
    ).all()
    assert (after.loss < before.loss).all()
    assert after.camera_report is not None
    assert after.camera_report.reasons == ("max_iterations",) * 2
    assert set(after.terms) == {"reprojection", "pose_prior", "angle_prior", "shape_prior"}
    eye = torch.eye(3, dtype=F64).expand(2, 23, 3, 3)
    torch.testing.assert_close(after.body_pose @ after.body_pose.transpose(-1, -2), eye)
    torch.testing.assert_close(torch.linalg.det(after.body_pose), torch.ones(2, 23, dtype=F64))


def test_objective_terms_by_hand():
    p, prior, init = setup()
    options = SMPLifyOptions(camera_stage=False, stopping=StoppingRules(max_iterations=0))
    result = run(p, prior, init, options)
    pose_aa = rotmat_to_axis_angle(init["init_body_pose"])
    joints = p.body_model(init["init_global_orient"], init["init_body_pose"], init["init_betas"])
    t = init["init_camera_translation"]
    W, H = 640.0, 480.0
    for b in range(2):
        data = 0.0
        for k in range(44):
            if k in (8, 9, 12, 27, 28, 39):  # hips zeroed (use_hips=False)
                continue
            X = joints[b, k] + t[b]
            u = 5000.0 * float(X[0] / X[2]) + W / 2
            v = 5000.0 * float(X[1] / X[2]) + H / 2
            for r in (u - float(p.keypoints_2d[b, k, 0]), v - float(p.keypoints_2d[b, k, 1])):
                data += 1e4 * r**2 / (1e4 + r**2)
        data *= (224.0 / max(W, H)) ** 2
        assert float(result.terms["reprojection"][b]) == pytest.approx(data, rel=1e-9)
        gmm = float(prior(pose_aa[b].reshape(1, 69))[0])
        assert float(result.terms["pose_prior"][b]) == pytest.approx(4.78**2 * gmm, rel=1e-9)
        angle = sum(
            math.exp(s * float(pose_aa[b, j, a])) ** 2
            for j, a, s in ((17, 1, 1.0), (18, 1, -1.0), (3, 0, -1.0), (4, 0, -1.0))
        )
        assert float(result.terms["angle_prior"][b]) == pytest.approx(15.2**2 * angle, rel=1e-9)
        assert float(result.terms["shape_prior"][b]) == 0.0
        assert float(result.loss[b]) == pytest.approx(
            sum(float(v[b]) for v in result.terms.values()), rel=1e-12
        )
    torch.testing.assert_close(result.terms["angle_prior"], 15.2**2 * angle_prior(pose_aa))
    assert result.camera_report is None


def test_batch_equals_each_item_alone():
    p, prior, init = setup()
    options = SMPLifyOptions(
        stopping=StoppingRules(
            max_iterations=10,
            relative_tolerance=None,
            gradient_tolerance=None,
            stop_on_increase=False,
        )
    )
    together = run(p, prior, init, options)
    for b in range(2):
        init_b = {k: v[b : b + 1] for k, v in init.items()}
        alone = fit_smplify(
            body_model=p.body_model,
            pose_prior=prior,
            keypoints_2d=p.keypoints_2d[b : b + 1],
            focal_px=p.focal_px,
            image_size_px=p.image_size_px[b : b + 1],
            options=options,
            **init_b,
        )
        # Close, not bitwise: the GMM's einsum uses matrix kernels whose rounding may depend
        # on the batch size.
        torch.testing.assert_close(alone.body_pose[0], together.body_pose[b], atol=1e-9, rtol=0)
        torch.testing.assert_close(
            alone.camera_translation[0], together.camera_translation[b], atol=1e-9, rtol=0
        )


def test_too_few_keypoints_returns_the_initial_values():
    p, prior, init = setup()
    kp = p.keypoints_2d.clone()
    kp[0, :, 2] = 0.0
    options = SMPLifyOptions(stopping=StoppingRules(max_iterations=3, relative_tolerance=None))
    result = run(p, prior, init, options, keypoints_2d=kp)
    assert result.report.reasons[0].startswith(TOO_FEW_KEYPOINTS)
    assert result.camera_report is not None and result.camera_report.reasons[0].startswith(
        TOO_FEW_KEYPOINTS
    )
    torch.testing.assert_close(result.body_pose[0], init["init_body_pose"][0])
    assert torch.equal(result.camera_translation[0], init["init_camera_translation"][0])
    assert bool(result.report.optimized[1])


def test_priors_alone_pull_the_pose_towards_the_mixture():
    p, prior, init = setup()
    kp = p.keypoints_2d.clone()
    kp[..., 2] = 0.0
    options = SMPLifyOptions(
        camera_stage=False,
        min_confident_keypoints=0,
        adam=AdamOptions(learning_rate=0.02),
        stopping=StoppingRules(max_iterations=30, relative_tolerance=None, stop_on_increase=False),
    )
    zero = SMPLifyOptions(
        camera_stage=False, min_confident_keypoints=0, stopping=StoppingRules(max_iterations=0)
    )
    before = run(p, prior, init, zero, keypoints_2d=kp)
    after = run(p, prior, init, options, keypoints_2d=kp)
    assert (after.terms["pose_prior"] < before.terms["pose_prior"]).all()
    assert (after.terms["angle_prior"] < before.terms["angle_prior"]).all()


def test_rejects_bad_inputs():
    p, prior, init = setup()
    options = SMPLifyOptions(stopping=StoppingRules(max_iterations=0))
    kp = p.keypoints_2d.clone()
    kp[1, 0, 1] = math.nan
    with pytest.raises(
        ValueError, match=r"`keypoints_2d` must have finite .*\(batch items \[1\]\)"
    ):
        run(p, prior, init, options, keypoints_2d=kp)
    bad = {**init, "init_body_pose": init["init_body_pose"][:, :21]}
    with pytest.raises(ValueError, match=r"`init_body_pose` must have shape \(2, 23, 3, 3\)"):
        run(p, prior, bad, options)
    with pytest.raises(
        ValueError, match=r"`pose_prior` must return per-item values of shape \(2,\)"
    ):
        run(p, lambda pose: pose.sum(), init, options)
    with pytest.raises(ValueError, match="unknown pose_representation"):
        SMPLifyOptions(pose_representation="quat")
    with pytest.raises(ValueError, match="camera_stage_keypoint_idx"):
        run(p, prior, init, SMPLifyOptions(camera_stage_keypoint_idx=(50,)))


def test_defaults_are_spins():
    o = SMPLifyOptions()
    assert (o.pose_prior_weight, o.angle_prior_weight, o.shape_prior_weight) == (4.78, 15.2, 5.0)
    assert (o.sigma_px, o.depth_weight, o.optimizer, o.adam.learning_rate) == (
        100.0,
        100.0,
        "adam",
        1e-2,
    )
    assert o.stopping.max_iterations == 100
    assert o.stopping.relative_tolerance is None and not o.stopping.stop_on_increase
