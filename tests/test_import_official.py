"""Official checkpoints: key routing, strict errors, and outputs equal to an independent model.

The original code is not available here, so the "official" checkpoints are written from the
documented layout (docs/checkpoints.md#official-checkpoints) with random weights, and the expected outputs come from an
independent composition written in this file: PyPI nflows' Flow / CompositeTransform / ActNorm /
LULinear / AdditiveCouplingTransform with a conditioner following the fork (docs/model.md#conditioner), a
Gram–Schmidt written here, and the FC head computed by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from nflows.distributions import StandardNormal
from nflows.flows.base import Flow
from nflows.transforms import ActNorm, AdditiveCouplingTransform, CompositeTransform, LULinear
from pipeline.testing import load_tool
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]


class ForkResidualBlock(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.batch_norm_layers = nn.ModuleList([nn.BatchNorm1d(hidden), nn.BatchNorm1d(hidden)])
        self.linear_layers = nn.ModuleList([nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)])
        self.dropout = nn.Dropout(0.5)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        t = self.linear_layers[0](F.relu(self.batch_norm_layers[0](h)))
        t = self.linear_layers[1](self.dropout(F.relu(self.batch_norm_layers[1](t))))
        return h + t


class ForkResidualNet(nn.Module):
    """The fork's conditioner: context concatenated at the input layer only (docs/model.md#conditioner)."""

    def __init__(self, in_features: int, out_features: int, hidden: int, context: int) -> None:
        super().__init__()
        self.initial_layer = nn.Linear(in_features + context, hidden)
        self.blocks = nn.ModuleList([ForkResidualBlock(hidden) for _ in range(2)])
        self.final_layer = nn.Linear(hidden, out_features)

    def forward(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = self.initial_layer(torch.cat([inputs, context], dim=-1))
        for block in self.blocks:
            h = block(h)
        return self.final_layer(h)


def reference_glow(features: int, context: int, hidden: int, layers: int) -> Flow:
    transforms = []
    mask = torch.ones(features)
    mask[::2] = -1
    for _ in range(layers):
        transforms.append(ActNorm(features))
        transforms.append(LULinear(features, identity_init=True))
        transforms.append(
            AdditiveCouplingTransform(
                mask.clone(),
                transform_net_create_fn=lambda i, o: ForkResidualNet(i, o, hidden, context),
            )
        )
        mask = -mask
    return Flow(CompositeTransform(transforms), StandardNormal([features]))


def official_flow_state(features: int, context: int, hidden: int, layers: int, gen) -> dict:
    """Random tensors for every documented `flow.flow.*` key (docs/checkpoints.md#flow-keys), dummy buffers too."""
    half = features // 2
    tri = features * (features - 1) // 2
    state = {"_transform.dummy_buffer": torch.tensor(1.0)}
    even, odd = torch.arange(0, features, 2), torch.arange(1, features, 2)
    for i in range(layers):
        a, lu, c = (f"_transform._transforms.{3 * i + k}" for k in range(3))
        state |= {
            f"{a}.log_scale": 0.1 * torch.randn(features, generator=gen),
            f"{a}.shift": 0.1 * torch.randn(features, generator=gen),
            f"{a}.initialized": torch.tensor(True),
            f"{a}.dummy_buffer": torch.tensor(1.0),
            f"{lu}.bias": 0.1 * torch.randn(features, generator=gen),
            f"{lu}.lower_entries": 0.05 * torch.randn(tri, generator=gen),
            f"{lu}.upper_entries": 0.05 * torch.randn(tri, generator=gen),
            f"{lu}.unconstrained_upper_diag": 0.5 + 0.1 * torch.randn(features, generator=gen),
            f"{lu}.dummy_buffer": torch.tensor(1.0),
            f"{c}.dummy_buffer": torch.tensor(1.0),
            f"{c}.identity_features": even if i % 2 == 0 else odd,
            f"{c}.transform_features": odd if i % 2 == 0 else even,
            f"{c}.transform_net.initial_layer.weight": 0.1
            * torch.randn(hidden, half + context, generator=gen),
            f"{c}.transform_net.initial_layer.bias": 0.1 * torch.randn(hidden, generator=gen),
            f"{c}.transform_net.final_layer.weight": 0.1 * torch.randn(half, hidden, generator=gen),
            f"{c}.transform_net.final_layer.bias": 0.1 * torch.randn(half, generator=gen),
        }
        for b in range(2):
            for k in range(2):
                bn = f"{c}.transform_net.blocks.{b}.batch_norm_layers.{k}"
                state |= {
                    f"{bn}.weight": 1 + 0.1 * torch.randn(hidden, generator=gen),
                    f"{bn}.bias": 0.1 * torch.randn(hidden, generator=gen),
                    f"{bn}.running_mean": 0.1 * torch.randn(hidden, generator=gen),
                    f"{bn}.running_var": 1 + 0.1 * torch.rand(hidden, generator=gen),
                    f"{bn}.num_batches_tracked": torch.tensor(7),
                }
                lin = f"{c}.transform_net.blocks.{b}.linear_layers.{k}"
                state |= {
                    f"{lin}.weight": 0.1 * torch.randn(hidden, hidden, generator=gen),
                    f"{lin}.bias": 0.1 * torch.randn(hidden, generator=gen),
                }
    return state


def without_dummy(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.endswith("dummy_buffer")}


def gram_schmidt(x6: torch.Tensor) -> torch.Tensor:
    """6D (first two columns, docs/conventions.md#6d-rotations) -> rotation matrices, written independently."""
    a1, a2 = x6[..., 0:3], x6[..., 3:6]
    b1 = a1 / a1.norm(dim=-1, keepdim=True)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / b2.norm(dim=-1, keepdim=True)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)


HIDDEN, LAYERS, FC = 16, 2, 12


@pytest.fixture(scope="module")
def official_prohmr(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    from hmr_backbone import ResNet
    from pose_body import write_mean_params
    from pose_losses import PoseDiscriminator

    gen = torch.Generator().manual_seed(0)
    folder = tmp_path_factory.mktemp("official")
    backbone = ResNet(depth=18)
    for key, tensor in backbone.state_dict().items():
        if key.endswith("running_var"):
            tensor.copy_(1 + 0.1 * torch.rand(tensor.shape, generator=gen))
        elif tensor.is_floating_point():
            tensor.copy_(0.05 * torch.randn(tensor.shape, generator=gen))
    state = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    state |= {
        f"flow.flow.{k}": v for k, v in official_flow_state(144, 512, HIDDEN, LAYERS, gen).items()
    }
    state |= {
        "flow.fc_head.layers.0.weight": 0.05 * torch.randn(FC, 512, generator=gen),
        "flow.fc_head.layers.0.bias": 0.05 * torch.randn(FC, generator=gen),
        "flow.fc_head.layers.2.weight": 0.05 * torch.randn(13, FC, generator=gen),
        "flow.fc_head.layers.2.bias": 0.05 * torch.randn(13, generator=gen),
        "flow.fc_head.init_cam": torch.tensor([[[0.9, 0.0, 0.1]]]),
        "flow.fc_head.init_betas": 0.1 * torch.randn(1, 1, 10, generator=gen),
        "initialized": torch.tensor(True),
        "smpl.shapedirs": torch.zeros(4, 3, 10),
        "smpl.J_regressor": torch.zeros(24, 4),
    }
    state |= {f"discriminator.{k}": v for k, v in PoseDiscriminator().state_dict().items()}
    path = folder / "official.ckpt"
    torch.save({"state_dict": state, "global_step": 1000, "epoch": 3}, path)
    mean = folder / "mean.npz"
    write_mean_params(mean, pose_6d=np.zeros(144), betas=np.zeros(10), camera=np.array([0.9, 0, 0]))
    return path, state, mean


def test_prohmr_import_reproduces_independent_outputs(official_prohmr, tmp_path) -> None:
    from pipeline.config import BodyConfig
    from pipeline.session import load_prohmr_checkpoint

    from hmr_backbone import ResNet

    path, state, mean = official_prohmr
    tool = load_tool("import_official_checkpoint")
    body = BodyConfig(model_path="procedural", mean_params_path=str(mean))
    ours, report = tool.import_prohmr(tool.read_official(path), body)
    assert report.counts["dropped"] == (1 + 3 * LAYERS) + 2  # dummy buffers + smpl.*
    out = tmp_path / "imported.pt"
    tool.save_checkpoint(out, ours)
    torch.load(out, weights_only=True)  # loadable without unpickling code
    model, _ = load_prohmr_checkpoint(out, device=torch.device("cpu"))

    gen = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 64, 64, generator=gen)
    backbone = ResNet(depth=18)
    backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    backbone.eval()
    reference = reference_glow(144, 512, HIDDEN, LAYERS)
    reference.load_state_dict(
        without_dummy({k[10:]: v for k, v in state.items() if k.startswith("flow.flow.")})
    )
    reference.eval()
    with torch.no_grad():
        features = backbone(images)
        torch.testing.assert_close(model.features(images), features, rtol=1e-4, atol=1e-4)
        poses = 0.3 * torch.randn(2, 144, generator=gen)
        expected_log_prob = reference.log_prob(poses, context=features)
        log_prob, _ = model.flow.log_prob(poses[:, None], features)
        torch.testing.assert_close(log_prob[:, 0], expected_log_prob, rtol=1e-4, atol=1e-4)
        z = torch.randn(2, 1, 144, generator=gen)
        expected_x, _ = reference._transform.inverse(z[:, 0], context=features)
        output = model.decode(features, num_samples=1, z=z)
        torch.testing.assert_close(output.pose_6d[:, 0], expected_x, rtol=1e-4, atol=1e-4)
        rotations = gram_schmidt(expected_x.reshape(2, 24, 6))
        torch.testing.assert_close(
            output.global_orient[:, 0, 0], rotations[:, 0], atol=1e-4, rtol=0
        )
        torch.testing.assert_close(output.body_pose[:, 0], rotations[:, 1:], atol=1e-4, rtol=0)
        hidden = F.relu(
            features @ state["flow.fc_head.layers.0.weight"].T + state["flow.fc_head.layers.0.bias"]
        )
        offset = (
            hidden @ state["flow.fc_head.layers.2.weight"].T + state["flow.fc_head.layers.2.bias"]
        )
        betas = offset[:, :10] + state["flow.fc_head.init_betas"][0]
        camera = offset[:, 10:] + state["flow.fc_head.init_cam"][0]
        torch.testing.assert_close(output.betas[:, 0], betas, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(output.camera[:, 0], camera, rtol=1e-4, atol=1e-4)
        keypoints = model.body_model.keypoints_only(
            global_orient=rotations[:, :1], body_pose=rotations[:, 1:], betas=betas
        ).keypoints
        torch.testing.assert_close(output.keypoints_3d[:, 0], keypoints, rtol=1e-4, atol=1e-4)


def test_unexpected_and_missing_keys_are_listed(official_prohmr) -> None:
    from pipeline.config import BodyConfig

    from prohmr_model.official import CheckpointImportError

    _, state, mean = official_prohmr
    tool = load_tool("import_official_checkpoint")
    body = BodyConfig(model_path="procedural", mean_params_path=str(mean))
    extra = {"state_dict": {**state, "head.typo.weight": torch.zeros(1)}}
    with pytest.raises(CheckpointImportError, match=r"head\.typo\.weight"):
        tool.import_prohmr(extra, body)
    key = "flow.flow._transform._transforms.1.bias"
    missing = {"state_dict": {k: v for k, v in state.items() if k != key}}
    with pytest.raises(CheckpointImportError, match=r"missing \(1\): " + key.replace(".", r"\.")):
        tool.import_prohmr(missing, body)


def test_lightning_metadata_objects_are_not_executed(official_prohmr, tmp_path) -> None:
    _, state, _ = official_prohmr
    tool = load_tool("import_official_checkpoint")
    marker = tmp_path / "executed"

    class Hostile:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": Hostile()}, bad)
    loaded = tool.read_official(bad)
    assert not marker.exists()
    assert set(loaded["state_dict"]) == set(state)


def test_lifting_import_gives_identical_samples(tmp_path) -> None:
    from pipeline.config import LiftingConfig, _build

    from hmr_backbone import FCResNet
    from prohmr_model.lifting import build_lifting_model

    gen = torch.Generator().manual_seed(2)
    backbone = FCResNet(in_features=34, hidden_features=32, out_features=32, num_blocks=2)
    for key, tensor in backbone.state_dict().items():
        if tensor.is_floating_point() and not key.endswith("running_var"):
            tensor.add_(0.05 * torch.randn(tensor.shape, generator=gen))
    state = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    state |= {
        f"flow.flow.{k}": v for k, v in official_flow_state(48, 32, HIDDEN, LAYERS, gen).items()
    }
    state["initialized"] = torch.tensor(True)
    path = tmp_path / "skeleton.ckpt"
    torch.save({"state_dict": state}, path)
    tool = load_tool("import_official_checkpoint")
    ours, _ = tool.import_lifting(tool.read_official(path), stats="stats.npz")
    config = _build(LiftingConfig, ours["config"], "", "test")
    model = build_lifting_model(config.model)
    model.load_state_dict(ours["model"])
    model.eval()
    backbone.eval()
    reference = reference_glow(48, 32, HIDDEN, LAYERS)
    reference.load_state_dict(
        without_dummy({k[10:]: v for k, v in state.items() if k.startswith("flow.flow.")})
    )
    reference.eval()
    with torch.no_grad():
        keypoints_2d = torch.randn(3, 17, 3, generator=gen)
        z = torch.randn(3, 5, 48, generator=gen)
        features = backbone(keypoints_2d[..., :2].reshape(3, 34))
        expected, _ = reference._transform.inverse(
            z.reshape(15, 48), context=features.repeat_interleave(5, dim=0)
        )
        output = model(keypoints_2d, num_samples=5, z=z)
        torch.testing.assert_close(
            output.keypoints_3d, expected.reshape(3, 5, 16, 3), rtol=1e-4, atol=1e-4
        )


class AttributeDict(dict):
    """Like Lightning's AttributeDict: a dict subclass in the file's metadata."""


class ListOfThings(list):
    """A list subclass in the file's metadata."""


@pytest.mark.parametrize("zip_format", [True, False])
def test_lightning_metadata_with_dict_and_list_subclasses_is_read(
    official_prohmr, tmp_path, zip_format
) -> None:
    """Metadata objects of unknown classes become inert stand-ins; dict and list subclasses
    keep their items (pickle fills them after building the object)."""
    from pipeline.config import BodyConfig

    _, state, mean = official_prohmr
    tool = load_tool("import_official_checkpoint")
    path = tmp_path / "lightning.ckpt"
    hyper = AttributeDict(lr=1e-4, nested=AttributeDict(depth=18), items=ListOfThings([1, 2]))
    torch.save(
        {"state_dict": state, "hyper_parameters": hyper, "global_step": 7},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    loaded = tool.read_official(path)
    assert loaded["global_step"] == 7
    inert = loaded["hyper_parameters"]
    assert inert.global_name.endswith("AttributeDict")
    assert inert.items["lr"] == 1e-4 and inert.items["nested"].items == {"depth": 18}
    assert inert.items["items"].elements == [1, 2]
    for key, value in state.items():
        torch.testing.assert_close(loaded["state_dict"][key], value, rtol=0, atol=0)
    body = BodyConfig(model_path="procedural", mean_params_path=str(mean))
    ours, _ = tool.import_prohmr(loaded, body)
    assert ours["step"] == 7


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_resnet_depth_is_inferred_for_every_supported_depth(depth) -> None:
    from hmr_backbone import ResNet
    from prohmr_model.official import infer_resnet_depth

    with torch.device("meta"):
        keys = {f"backbone.{k}": None for k in ResNet(depth=depth).state_dict()}
    context = 512 if depth < 50 else 2048
    assert infer_resnet_depth(keys, context_features=context) == depth


def test_resnet_depth_mismatches_are_refused() -> None:
    from hmr_backbone import ResNet
    from prohmr_model.official import CheckpointImportError, infer_resnet_depth

    with torch.device("meta"):
        keys = {f"backbone.{k}": None for k in ResNet(depth=34).state_dict()}
    with pytest.raises(CheckpointImportError, match=r"ResNet-34 .* 2048 features, expected 512"):
        infer_resnet_depth(keys, context_features=2048)
    truncated = {k: v for k, v in keys.items() if not k.startswith("backbone.layer3.5.")}
    with pytest.raises(CheckpointImportError, match=r"basic blocks per stage \[3, 4, 5, 3\]"):
        infer_resnet_depth(truncated, context_features=512)
