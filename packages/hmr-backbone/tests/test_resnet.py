import math

import pytest
import torch

from hmr_backbone import RESNET_LAYOUTS, ResNet

FEATURES = {18: 512, 34: 512, 50: 2048, 101: 2048, 152: 2048}


def assert_close_to_rounding(actual, expected):
    """Float32 network outputs computed by different kernels (memory formats, batch sizes, CPUs).

    Each output sums thousands of rounded products over tens of layers, so its rounding error is
    relative to the size of the activations, not to its own value (an output near zero comes from
    cancellation): up to ~1e-6 of the largest output was measured across kernels and thread
    counts; 1e-5 of it leaves a 10x margin, and a real bug (wrong layout, an item mixing with
    another) moves outputs by a fraction of their scale.
    """
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, atol=1e-5 * scale, rtol=1e-4)


@pytest.mark.parametrize("depth", sorted(RESNET_LAYOUTS))
def test_pooled_features_and_feature_map_have_documented_shapes_for_every_depth(depth):
    model = ResNet(depth=depth).eval()
    images = torch.randn(1, 3, 32, 64)
    with torch.no_grad():
        feature_map = model.forward_feature_map(images)
        pooled = model(images)
    assert model.num_features == FEATURES[depth]
    assert feature_map.shape == (1, FEATURES[depth], 1, 2)
    assert pooled.shape == (1, FEATURES[depth])
    torch.testing.assert_close(pooled, ResNet.pool(feature_map))


def test_feature_map_of_a_224_crop_is_7_by_7():
    model = ResNet(depth=18).eval()
    with torch.no_grad():
        assert model.forward_feature_map(torch.randn(1, 3, 224, 224)).shape == (1, 512, 7, 7)


def test_pooled_features_are_the_spatial_mean_of_the_feature_map():
    model = ResNet(depth=18).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feature_map = model.forward_feature_map(images)
        pooled = model(images)
    torch.testing.assert_close(pooled, feature_map.mean(dim=(2, 3)))


def test_accepts_any_leading_batch_dimensions():
    model = ResNet(depth=18).eval()
    images = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        batched = model(images)
        flat = model(images.reshape(6, 3, 32, 32))
        single = model(images[0, 0])
    assert batched.shape == (2, 3, 512)
    assert single.shape == (512,)
    torch.testing.assert_close(batched.reshape(6, 512), flat)
    assert_close_to_rounding(single, flat[0])


def test_channels_last_input_and_model_give_the_same_result():
    model = ResNet(depth=50).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
        from_channels_last_input = model(images.contiguous(memory_format=torch.channels_last))
        model = model.to(memory_format=torch.channels_last)
        from_channels_last_model = model(images.contiguous(memory_format=torch.channels_last))
        feature_map = model.forward_feature_map(images)
    assert_close_to_rounding(from_channels_last_input, expected)
    assert_close_to_rounding(from_channels_last_model, expected)
    assert feature_map.shape == (2, 2048, 2, 2)


def test_eval_mode_is_deterministic_and_independent_of_the_batch():
    model = ResNet(depth=34)
    # Give BatchNorm non-trivial running statistics first.
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 32, 32))
    model.eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        first = model(images)
        second = model(images)
        alone = model(images[1:2])
    assert torch.equal(first, second)
    assert_close_to_rounding(alone[0], first[1])


def test_gradients_reach_every_parameter():
    model = ResNet(depth=18).train()
    images = torch.randn(2, 3, 32, 32, requires_grad=True)
    model(images).square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_initialisation_is_prohmr_kaiming_fan_out_and_unit_batchnorm():
    model = ResNet(depth=50)
    weight = model.layer3[0].conv2.weight  # 256 x 256 x 3 x 3: 589 824 draws
    expected_std = math.sqrt(2.0 / (3 * 3 * 256))
    assert abs(weight.std().item() / expected_std - 1) < 0.01
    assert abs(weight.mean().item()) < 0.01 * expected_std
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))


def test_has_no_classifier_and_resnet50_has_318_state_dict_entries():
    model = ResNet(depth=50)
    keys = list(model.state_dict())
    assert len(keys) == 318
    assert not any(k.startswith(("fc.", "avgpool.")) for k in keys)


def test_rejects_unknown_depth():
    with pytest.raises(ValueError, match=r"unknown ResNet depth 42; expected one of \[18, 34"):
        ResNet(depth=42)


def test_rejects_images_without_three_channels_first():
    model = ResNet(depth=18)
    with pytest.raises(ValueError, match=r"`images` must have shape \(\.\.\., 3, H, W\), got"):
        model(torch.randn(2, 32, 32, 3))
    with pytest.raises(ValueError, match=r"got \(3, 32\)"):
        model(torch.randn(3, 32))


def test_rejects_integer_images():
    with pytest.raises(TypeError, match=r"`images` must be a floating-point tensor"):
        ResNet(depth=18)(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_pool_rejects_a_vector():
    with pytest.raises(ValueError, match=r"`feature_map` must have shape \(\.\.\., C, h, w\)"):
        ResNet.pool(torch.randn(5))


@pytest.mark.gpu
def test_channels_last_and_autocast_on_cuda_agree_with_cpu(device):
    model = ResNet(depth=50).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
        model = model.to(device, memory_format=torch.channels_last)
        x = images.to(device).contiguous(memory_format=torch.channels_last)
        float32 = model(x)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            mixed = model(x)
    assert float32.device == x.device
    # cuDNN may use TF32 for float32 convolutions (10-bit mantissa, ~5e-4 per rounding, a few
    # 1e-3 of the activations' size after 50 layers): compare loosely, relative to the largest
    # output (as in assert_close_to_rounding; an element near zero comes from cancellation).
    scale = expected.abs().max().item()
    torch.testing.assert_close(float32.cpu(), expected, atol=1e-2 * scale, rtol=1e-2)
    assert mixed.shape == (2, 2048)
    assert torch.isfinite(mixed).all()
