"""ResNet-18/34/50/101/152 image backbones with torchvision's parameter names, without torchvision.

The layout is the one torchvision documents (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, with the stride of a Bottleneck on its 3x3 convolution, "ResNet v1.5"):

- stem: `conv1` 7x7/2 (3 -> 64, no bias), `bn1`, ReLU, 3x3/2 max pool;
- four stages `layer1`..`layer4` of blocks with 64, 128, 256, 512 "planes" and strides 1, 2, 2, 2;
  block b of a stage is `layer{s}.{b}`;
- BasicBlock (ResNet-18/34, expansion 1): `conv1` 3x3 (stride), `bn1`, ReLU, `conv2` 3x3, `bn2`;
- Bottleneck (ResNet-50/101/152, expansion 4): `conv1` 1x1, `bn1`, `conv2` 3x3 (stride), `bn2`,
  `conv3` 1x1 (planes -> 4·planes), `bn3`;
- the first block of a stage whose input differs in size or channels from its output has
  `downsample.0` (1x1 conv with the stride, no bias) and `downsample.1` (BatchNorm);
- the residual sum is followed by ReLU.

As in ProHMR (`prohmr/models/backbones/resnet.py`) there is no `avgpool` and no `fc` module: the
output is the mean of the last feature map over its spatial positions, so a ResNet-50 state dict
has 318 entries, torchvision's 320 minus `fc.weight` and `fc.bias`.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from hmr_backbone._checks import check_input

__all__ = ["RESNET_LAYOUTS", "BasicBlock", "Bottleneck", "ResNet"]

BlockKind = Literal["basic", "bottleneck"]

#: Block kind and number of blocks in each of the four stages, by depth (torchvision's table).
RESNET_LAYOUTS: dict[int, tuple[BlockKind, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

_STAGE_PLANES = (64, 128, 256, 512)
_STAGE_STRIDES = (1, 2, 2, 2)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def _downsample(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """Projection shortcut (`downsample.0` conv, `downsample.1` BN) when the shapes differ."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(_conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34). Output channels = `planes`.

    Shapes: (B, in_channels, H, W) -> (B, planes, H / stride, W / stride).
    """

    expansion = 1

    def __init__(self, *, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 convolutions with a shortcut (ResNet-50/101/152, "v1.5").

    Shapes: (B, in_channels, H, W) -> (B, 4·planes, H / stride, W / stride).
    """

    expansion = 4

    def __init__(self, *, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = _conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


class ResNet(nn.Module):
    """ResNet image encoder returning globally average-pooled features.

    Parameter and buffer names are torchvision's (`conv1.weight`, `layer3.5.bn2.running_var`,
    `layer1.0.downsample.0.weight`, ...), without `fc.*`, so ImageNet files and ProHMR's
    `backbone.` weights load with `hmr_backbone.load_backbone_weights`.

    Initialisation (as in torchvision and ProHMR): convolutions N(0, 2/n) with
    n = k·k·out_channels (Kaiming normal, fan-out), BatchNorm weight 1 and bias 0. Load
    pretrained weights for anything but a from-scratch experiment.

    Inputs are RGB crops normalised with the ImageNet mean (0.485, 0.456, 0.406) and standard
    deviation (0.229, 0.224, 0.225) on the [0, 1] scale (ProHMR uses 224 x 224 crops).
    Channels-last inputs and modules (`model.to(memory_format=torch.channels_last)`) work and
    give the same result; nothing in the forward pass requires a contiguous layout.

    Args:
        depth: 18, 34, 50, 101 or 152 (ProHMR uses 50).

    Attributes:
        depth: the depth given.
        num_features: C, the size of the pooled feature (512 for 18/34, 2048 for 50/101/152).
    """

    def __init__(self, *, depth: int) -> None:
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise ValueError(
                f"unknown ResNet depth {depth!r}; expected one of {sorted(RESNET_LAYOUTS)}"
            )
        kind, blocks_per_stage = RESNET_LAYOUTS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = 64
        stages = []
        for planes, stride, num_blocks in zip(
            _STAGE_PLANES, _STAGE_STRIDES, blocks_per_stage, strict=True
        ):
            blocks = []
            for b in range(num_blocks):
                blocks.append(
                    block(in_channels=in_channels, planes=planes, stride=stride if b == 0 else 1)
                )
                in_channels = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = in_channels
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_feature_map(self, images: Tensor) -> Tensor:
        """Return the last stage's feature map (before pooling).

        Args:
            images: (..., 3, H, W) normalised RGB images.

        Returns:
            (..., C, h, w) features with h = ceil(H / 32), w = ceil(W / 32) (7 x 7 for 224 x 224),
            C = `num_features`.

        Raises:
            ValueError: if `images` does not end with (3, H, W) (e.g. channels last, (..., H,
                W, 3)), or is on another device than the network.
            TypeError: if `images` is not a floating-point tensor (uint8 images must be
                normalised first) or has another dtype than the network's parameters.
        """
        check_input("images", images, (3, "H", "W"), self)
        leading = images.shape[:-3]
        x = images if images.ndim == 4 else images.reshape(-1, *images.shape[-3:])
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x if images.ndim == 4 else x.reshape(*leading, *x.shape[1:])

    def forward(self, images: Tensor) -> Tensor:
        """Return globally average-pooled features (ProHMR's conditioning vector).

        Args:
            images: (..., 3, H, W) normalised RGB images.

        Returns:
            (..., C) the mean of `forward_feature_map` over its h·w positions
            (C = 2048 for ResNet-50).
        """
        return self.forward_feature_map(images).mean(dim=(-2, -1))

    @staticmethod
    def pool(feature_map: Tensor) -> Tensor:
        """Average a (..., C, h, w) feature map over its positions -> (..., C).

        Use it with `forward_feature_map` to get both outputs from one pass.
        """
        check_input("feature_map", feature_map, ("C", "h", "w"))
        return feature_map.mean(dim=(-2, -1))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, num_features={self.num_features}"
