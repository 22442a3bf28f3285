"""Multiview refinement with a view-conditioned toy decoder."""

import math

import pytest
import torch

from pose_fitting import (
    LBFGSOptions,
    MultiviewOptions,
    StoppingRules,
    refine_multiview,
    rotation_consistency,
)
from pose_fitting.testing import LinearPoseDecoder, ToyKinematicBody
from pose_geometry import project_points

F64 = torch.float64
FAST = StoppingRules(max_iterations=8)


class ConditionedDecoder:
    """View v decodes z_v + c_v: each view's mode (z = 0) is a different pose, as with a flow
    conditioned on each view's image."""

    def __init__(self, contexts, generator):
        self.base = LinearPoseDecoder(latent_dim=contexts.shape[-1], generator=generator)
        self.contexts = contexts.reshape(-1, contexts.shape[-1])

    def __call__(self, z):
        return self.base(z + self.contexts)


def make(num_views=3, groups=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    lead = (num_views,) if groups is None else (groups, num_views)
    contexts = 0.3 * torch.randn(*lead, 6, dtype=F64, generator=g)
    decoder = ConditionedDecoder(contexts, g)
    betas = 0.2 * torch.randn(*lead, 10, dtype=F64, generator=g)
    return decoder, ToyKinematicBody(), betas


def test_pulls_the_body_poses_of_the_views_together():
    decoder, body, betas = make()
    z0 = torch.zeros(3, 6, dtype=F64)
    result = refine_multiview(decoder=decoder, body_model=body, init_z=z0, init_betas=betas)
    before = rotation_consistency(decoder(z0)[1]).sum()
    after = rotation_consistency(result.body_pose).sum()
    assert after < 1e-3 * before
    assert result.report.converged.all() and len(result.report.reasons) == 1
    assert result.camera_translation is None
    assert set(result.terms) == {"consistency", "pose_prior"}
    torch.testing.assert_close(result.betas, betas.mean(dim=0))  # shared, fixed
    assert result.z.shape == (3, 6) and result.loss.shape == ()
    assert result.body_pose.shape == (3, 23, 3, 3) and result.keypoints_3d.shape == (3, 44, 3)
    torch.testing.assert_close(
        result.keypoints_3d,
        body(result.global_orient, result.body_pose, result.betas.expand(3, 10)),
    )


def test_objective_terms_by_hand():
    decoder, body, betas = make()
    z0 = 0.1 * torch.randn(3, 6, dtype=F64, generator=torch.Generator().manual_seed(4))
    result = refine_multiview(
        decoder=decoder,
        body_model=body,
        init_z=z0,
        init_betas=betas,
        options=MultiviewOptions(stopping=StoppingRules(max_iterations=0)),
    )
    pose = decoder(z0)[1]  # (3, 23, 3, 3)
    mean = pose.mean(dim=0)
    consistency = sum(
        float(((pose[v, j] - mean[j]) ** 2).sum()) for v in range(3) for j in range(23)
    )
    prior = float((z0**2).sum())
    assert float(result.terms["consistency"]) == pytest.approx(300.0**2 * consistency, rel=1e-12)
    assert float(result.terms["pose_prior"]) == pytest.approx(prior, rel=1e-12)
    assert float(result.loss) == pytest.approx(300.0**2 * consistency + prior, rel=1e-12)


def test_groups_are_refined_independently():
    decoder, body, betas = make(groups=2)
    options = MultiviewOptions(stopping=FAST)
    together = refine_multiview(
        decoder=decoder,
        body_model=body,
        init_z=torch.zeros(2, 3, 6, dtype=F64),
        init_betas=betas,
        options=options,
    )
    assert together.z.shape == (2, 3, 6) and together.loss.shape == (2,)
    assert len(together.report.reasons) == 2
    for gi in range(2):
        single = ConditionedDecoder.__new__(ConditionedDecoder)
        single.base, single.contexts = decoder.base, decoder.contexts.reshape(2, 3, 6)[gi]
        alone = refine_multiview(
            decoder=single,
            body_model=body,
            init_z=torch.zeros(3, 6, dtype=F64),
            init_betas=betas[gi],
            options=options,
        )
        assert torch.equal(alone.z, together.z[gi])
        assert torch.equal(alone.loss, together.loss[gi])


def test_reprojection_option_fits_the_images_too():
    decoder, body, betas = make(num_views=2, seed=3)
    g = torch.Generator().manual_seed(9)
    z_true = 0.2 * torch.randn(2, 6, dtype=F64, generator=g)
    go, bp = decoder(z_true)
    joints = body(go, bp, betas.mean(dim=0).expand(2, 10))
    size = torch.tensor([[640.0, 480.0]], dtype=F64).expand(2, 2)
    t = torch.tensor([[0.1, 0.0, 50.0], [-0.1, 0.1, 45.0]], dtype=F64)
    uv = project_points(joints, focal_px=5000.0, center_px=size / 2, translation=t)
    kp = torch.cat([uv, torch.ones(2, 44, 1, dtype=F64)], dim=-1)
    common = {
        "decoder": decoder,
        "body_model": body,
        "init_z": torch.zeros(2, 6, dtype=F64),
        "init_betas": betas,
        "keypoints_2d": kp,
        "init_camera_translation": t + torch.tensor([0.02, 0.02, 1.0], dtype=F64),
        "focal_px": 5000.0,
        "image_size_px": size,
    }
    plain = refine_multiview(**common, options=MultiviewOptions(stopping=FAST))
    with_images = refine_multiview(
        **common, options=MultiviewOptions(use_reprojection=True, stopping=FAST)
    )

    def error(result, translation):
        proj = project_points(
            result.keypoints_3d, focal_px=5000.0, center_px=size / 2, translation=translation
        )
        return float((proj - uv).norm(dim=-1).mean())

    assert "reprojection" in with_images.terms
    assert with_images.camera_translation is not None
    assert error(with_images, with_images.camera_translation) < 0.5 * error(
        plain, common["init_camera_translation"]
    )
    shared = refine_multiview(
        **common,
        options=MultiviewOptions(
            use_reprojection=True,
            optimize_betas=True,
            stopping=FAST,
            lbfgs=LBFGSOptions(max_inner_iterations=5),
        ),
    )
    assert "shape_prior" in shared.terms and shared.betas.shape == (10,)


def test_rejects_bad_inputs():
    decoder, body, betas = make()
    z0 = torch.zeros(3, 6, dtype=F64)
    with pytest.raises(
        ValueError,
        match=r"needs `keypoints_2d`, `init_camera_translation`, `focal_px`, `image_size_px`",
    ):
        refine_multiview(
            decoder=decoder,
            body_model=body,
            init_z=z0,
            init_betas=betas,
            options=MultiviewOptions(use_reprojection=True),
        )
    with pytest.raises(ValueError, match="optimize_betas=True` needs `use_reprojection=True"):
        MultiviewOptions(optimize_betas=True)
    with pytest.raises(ValueError, match=r"`init_z` must have shape \(V, D\) or \(G, V, D\)"):
        refine_multiview(
            decoder=decoder, body_model=body, init_z=torch.zeros(6, dtype=F64), init_betas=betas
        )
    with pytest.raises(ValueError, match=r"`init_betas` must have shape \(3, N\)"):
        refine_multiview(decoder=decoder, body_model=body, init_z=z0, init_betas=betas[:2])
    kp = torch.zeros(3, 44, 3, dtype=F64)
    kp[0, 0, 0] = math.nan
    kp[0, 0, 2] = 1.0  # NaN at confidence 0 would be ignored (documented); at 1 it is an error
    with pytest.raises(ValueError, match="`keypoints_2d` must have finite coordinates"):
        refine_multiview(
            decoder=decoder,
            body_model=body,
            init_z=z0,
            init_betas=betas,
            keypoints_2d=kp,
            init_camera_translation=torch.zeros(3, 3, dtype=F64),
            focal_px=5000.0,
            image_size_px=torch.full((3, 2), 224.0, dtype=F64),
            options=MultiviewOptions(use_reprojection=True),
        )
