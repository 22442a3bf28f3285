"""Image and keypoint backbones for ProHMR: torchvision-named ResNets and the lifting FC-ResNet.

`ResNet(depth=...)` (18/34/50/101/152) returns globally average-pooled features, (..., 3, H, W)
-> (..., C) with C = 2048 for ResNet-50, or the spatial map via `forward_feature_map`. Its
parameter names are torchvision's, so ImageNet files and ProHMR's backbone weights load strictly
from a local path with `load_backbone_weights`; torchvision is never imported and nothing is
downloaded. `FCResNet` is the fully connected residual encoder of the 2D-to-3D lifting model,
(..., 34) -> (..., 1024) by default, with ProHMR's parameter names.
"""

from importlib.metadata import PackageNotFoundError, version

from hmr_backbone.fcresnet import FCBlock, FCResBlock, FCResNet
from hmr_backbone.resnet import RESNET_LAYOUTS, BasicBlock, Bottleneck, ResNet
from hmr_backbone.weights import (
    IMAGENET_CLASSIFIER_KEYS,
    LoadedWeights,
    WeightsMismatchError,
    load_backbone_state_dict,
    load_backbone_weights,
)

try:
    __version__ = version("hmr-backbone")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "IMAGENET_CLASSIFIER_KEYS",
    "RESNET_LAYOUTS",
    "BasicBlock",
    "Bottleneck",
    "FCBlock",
    "FCResBlock",
    "FCResNet",
    "LoadedWeights",
    "ResNet",
    "WeightsMismatchError",
    "__version__",
    "load_backbone_state_dict",
    "load_backbone_weights",
]
