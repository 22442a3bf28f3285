import pytest
import torch

from pose_geometry.testing import random_rotmat
from pose_losses import PoseDiscriminator, lsgan_discriminator_loss, lsgan_generator_loss


def prohmr_discriminator_entries():
    """Name -> shape of ProHMR's `discriminator.` state dict (prefix removed)."""
    entries = {
        "D_conv1.weight": (32, 9, 1, 1),
        "D_conv1.bias": (32,),
        "D_conv2.weight": (32, 32, 1, 1),
        "D_conv2.bias": (32,),
        "betas_fc1.weight": (10, 10),
        "betas_fc1.bias": (10,),
        "betas_fc2.weight": (5, 10),
        "betas_fc2.bias": (5,),
        "betas_out.weight": (1, 5),
        "betas_out.bias": (1,),
        "D_alljoints_fc1.weight": (1024, 736),
        "D_alljoints_fc1.bias": (1024,),
        "D_alljoints_fc2.weight": (1024, 1024),
        "D_alljoints_fc2.bias": (1024,),
        "D_alljoints_out.weight": (1, 1024),
        "D_alljoints_out.bias": (1,),
    }
    for j in range(23):
        entries[f"pose_out.{j}.weight"] = (1, 32)
        entries[f"pose_out.{j}.bias"] = (1,)
    return entries


def reference_scores(disc, body_pose, betas):
    """The discriminator of docs/training.md#discriminator step by step, with per-joint loops."""
    relu = torch.relu
    m = body_pose.shape[0]
    x = body_pose.reshape(m, 23, 9)  # row-major matrix entries
    w1, b1 = disc.D_conv1.weight[:, :, 0, 0], disc.D_conv1.bias
    w2, b2 = disc.D_conv2.weight[:, :, 0, 0], disc.D_conv2.bias
    h = relu(relu(x @ w1.T + b1) @ w2.T + b2)  # (M, 23, 32): joint j's features
    joints = torch.cat([disc.pose_out[j](h[:, j]) for j in range(23)], dim=1)
    shape = disc.betas_out(relu(disc.betas_fc2(relu(disc.betas_fc1(betas)))))
    whole = torch.zeros(m, 32 * 23)
    for c in range(32):
        for j in range(23):
            whole[:, c * 23 + j] = h[:, j, c]  # channel-major
    whole = relu(disc.D_alljoints_fc2(relu(disc.D_alljoints_fc1(whole))))
    return torch.cat([joints, shape, disc.D_alljoints_out(whole)], dim=1)


def test_state_dict_names_and_shapes_match_prohmr():
    state = PoseDiscriminator().state_dict()
    assert len(state) == 62
    assert {k: tuple(v.shape) for k, v in state.items()} == prohmr_discriminator_entries()


def test_output_has_25_scores_per_pose_for_any_batch_shape():
    disc = PoseDiscriminator()
    scores = disc(random_rotmat(4, 2, 23), torch.randn(4, 2, 10))
    assert scores.shape == (4, 2, 25)
    assert disc.num_outputs == 25
    assert disc(random_rotmat(3, 23), torch.randn(3, 10)).shape == (3, 25)


def test_scores_match_a_step_by_step_reference():
    disc = PoseDiscriminator()
    for parameter in disc.parameters():  # non-zero biases so their placement is checked too
        torch.nn.init.normal_(parameter, std=0.1)
    body_pose, betas = random_rotmat(5, 23), torch.randn(5, 10)
    with torch.no_grad():
        torch.testing.assert_close(disc(body_pose, betas), reference_scores(disc, body_pose, betas))


def test_initialisation_is_xavier_weights_and_zero_biases():
    disc = PoseDiscriminator()
    for name, parameter in disc.named_parameters():
        if name.endswith("bias"):
            assert torch.equal(parameter, torch.zeros_like(parameter)), name
    fan_in, fan_out = 736, 1024
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    weight = disc.D_alljoints_fc1.weight
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.99 * bound


def test_gradients_reach_every_parameter():
    disc = PoseDiscriminator()
    for parameter in disc.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    disc(random_rotmat(6, 23), torch.randn(6, 10)).square().sum().backward()
    for name, parameter in disc.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_custom_sizes():
    disc = PoseDiscriminator(num_joints=4, num_betas=3, joint_features=8, hidden_features=16)
    assert disc(random_rotmat(2, 4), torch.randn(2, 3)).shape == (2, 6)
    assert disc.D_alljoints_fc1.weight.shape == (16, 32)


def test_rejects_pose_with_global_orientation_or_mismatched_batches():
    disc = PoseDiscriminator()
    with pytest.raises(ValueError, match=r"`body_pose` must have shape \(\.\.\., 23, 3, 3\)"):
        disc(random_rotmat(2, 24), torch.randn(2, 10))
    with pytest.raises(ValueError, match=r"`body_pose` and `betas` must have the same batch"):
        disc(random_rotmat(2, 23), torch.randn(3, 10))
    with pytest.raises(ValueError, match=r"`betas` must have shape \(\.\.\., 10\), got \(2, 11\)"):
        disc(random_rotmat(2, 23), torch.randn(2, 11))


def test_generator_loss_sums_all_scores_and_divides_by_the_number_of_images():
    fake_scores = torch.tensor(
        [[[1.0, 0.0], [0.5, 1.0]], [[1.0, 1.0], [1.0, 3.0]]]
    )  # (B=2, N=2, 2)
    # Σ (s - 1)² = 0 + 1 + 0.25 + 0 + 0 + 0 + 0 + 4 = 5.25; / B = 2.625 (not / (B·N)).
    torch.testing.assert_close(lsgan_generator_loss(fake_scores), torch.tensor(2.625))
    mean = lsgan_generator_loss(fake_scores, reduction="mean")
    torch.testing.assert_close(mean, torch.tensor(5.25 / 8))


def test_discriminator_loss_divides_both_sums_by_the_number_of_fake_pose_sets():
    fake_scores = torch.tensor([[[0.5, 0.0]], [[1.0, 0.0]]])  # M = B·N = 2 fake sets, K = 2
    real_scores = torch.tensor([[1.0, 0.0], [2.0, 1.0], [1.0, 1.0]])  # 3 real sets
    # Σ fake² = 0.25 + 1 = 1.25; Σ (real - 1)² = 0 + 1 + 1 + 0 + 0 + 0 = 2; (1.25 + 2) / 2.
    loss = lsgan_discriminator_loss(real_scores, fake_scores)
    torch.testing.assert_close(loss, torch.tensor(1.625))
    mean = lsgan_discriminator_loss(real_scores, fake_scores, reduction="mean")
    torch.testing.assert_close(mean, torch.tensor(1.25 / 4 + 2.0 / 6))


def test_perfect_discriminator_and_fooled_discriminator_give_zero_losses():
    ones, zeros = torch.ones(4, 2, 25), torch.zeros(4, 2, 25)
    assert lsgan_discriminator_loss(ones.reshape(8, 25), zeros).item() == 0.0
    assert lsgan_generator_loss(ones).item() == 0.0


def test_losses_reject_bad_shapes_and_reductions():
    with pytest.raises(ValueError, match=r"`fake_scores` must have shape \(B, \.\.\., K\)"):
        lsgan_generator_loss(torch.zeros(25))
    with pytest.raises(ValueError, match=r"same number of scores K, got \(3, 25\) and \(2, 24\)"):
        lsgan_discriminator_loss(torch.zeros(3, 25), torch.zeros(2, 24))
    with pytest.raises(ValueError, match=r"unknown reduction 'sum'; expected one of"):
        lsgan_generator_loss(torch.zeros(2, 25), reduction="sum")
    with pytest.raises(ValueError, match=r"'sum_per_fake_sample', 'mean'"):
        lsgan_discriminator_loss(torch.zeros(3, 25), torch.zeros(2, 25), reduction="sum")


def test_gradcheck_in_float64_through_a_small_discriminator():
    disc = PoseDiscriminator(num_joints=3, num_betas=2, joint_features=4, hidden_features=5)
    disc = disc.double()
    for parameter in disc.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    body_pose = random_rotmat(2, 3, dtype=torch.float64).requires_grad_(True)
    betas = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda p, b: lsgan_generator_loss(disc(p, b).unsqueeze(1)), (body_pose, betas)
    )
