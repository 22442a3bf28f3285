"""Bad inputs to the backbones: wrong shape, channels, dtype or device end in an error naming
the argument, what was expected and what arrived (not a convolution's message from deep inside)."""

from __future__ import annotations

import pytest
import torch

from hmr_backbone import FCResNet, ResNet


@pytest.fixture(scope="module")
def resnet() -> ResNet:
    torch.manual_seed(0)
    return ResNet(depth=18).eval()


@pytest.fixture(scope="module")
def fcresnet() -> FCResNet:
    torch.manual_seed(0)
    return FCResNet(in_features=34, hidden_features=32, out_features=16, num_blocks=1).eval()


@pytest.mark.parametrize(
    ("shape", "shown"),
    [
        ((1, 1, 32, 32), r"\(1, 1, 32, 32\)"),  # grey
        ((1, 4, 32, 32), r"\(1, 4, 32, 32\)"),  # RGBA
        ((1, 32, 32, 3), r"\(1, 32, 32, 3\)"),  # channels last
        ((32, 32), r"\(32, 32\)"),
    ],
)
def test_resnet_wrong_shape_or_channels(resnet, shape, shown: str) -> None:
    with pytest.raises(
        ValueError, match=rf"`images` must have shape \(\.\.\., 3, H, W\), got {shown}"
    ):
        resnet(torch.zeros(shape))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_resnet_integer_images(resnet, dtype) -> None:
    with pytest.raises(
        TypeError, match=rf"`images` must be a floating-point tensor, got dtype {dtype}"
    ):
        resnet(torch.zeros(1, 3, 32, 32, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_resnet_images_of_another_float_dtype(resnet, dtype) -> None:
    with pytest.raises(
        TypeError,
        match=rf"`images` must have the dtype of the module's parameters \(torch.float32\), got {dtype}",
    ):
        resnet(torch.zeros(1, 3, 32, 32, dtype=dtype))


def test_resnet_images_on_another_device(resnet) -> None:
    with pytest.raises(
        ValueError,
        match=r"`images` must be on the device of the module's parameters \(cpu\), got meta",
    ):
        resnet(torch.zeros(1, 3, 32, 32, device="meta"))


def test_resnet_float64_network_takes_float64_images() -> None:
    """Documented recovery: convert the network and the images together."""
    net = ResNet(depth=18).double().eval()
    assert net(torch.zeros(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("shape", [(2, 33), (2, 35), (34, 1)])
def test_fcresnet_wrong_feature_size(fcresnet, shape) -> None:
    with pytest.raises(
        ValueError, match=rf"`x` must have shape \(\.\.\., 34\), got \({shape[0]}, {shape[1]}\)"
    ):
        fcresnet(torch.zeros(shape))


@pytest.mark.parametrize(("dtype", "error"), [(torch.float64, TypeError), (torch.int64, TypeError)])
def test_fcresnet_wrong_dtype(fcresnet, dtype, error) -> None:
    with pytest.raises(error, match=rf"`x` must .*got (dtype )?{dtype}"):
        fcresnet(torch.zeros(2, 34, dtype=dtype))


def test_fcresnet_on_another_device(fcresnet) -> None:
    with pytest.raises(
        ValueError, match=r"`x` must be on the device of the module's parameters \(cpu\), got meta"
    ):
        fcresnet(torch.zeros(2, 34, device="meta"))
