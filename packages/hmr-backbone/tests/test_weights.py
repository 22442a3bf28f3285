import pytest
import torch

from hmr_backbone import (
    IMAGENET_CLASSIFIER_KEYS,
    FCResNet,
    ResNet,
    WeightsMismatchError,
    load_backbone_state_dict,
    load_backbone_weights,
)

BN_ENTRIES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_resnet_entries(depth, *, classifier=True, counters=True):
    """Name -> shape of a torchvision ResNet state dict, written from torchvision's documented
    layout (stem, four stages of Basic/Bottleneck blocks, projection shortcut on the first block
    of a stage when the shape changes, `fc` classifier with 1000 ImageNet classes)."""
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
    blocks[152] = (3, 8, 36, 3)
    basic = depth in (18, 34)
    expansion = 1 if basic else 4
    entries = {}

    def batchnorm(prefix, channels):
        for entry in BN_ENTRIES:
            if entry != "num_batches_tracked" or counters:
                entries[f"{prefix}.{entry}"] = () if entry == "num_batches_tracked" else (channels,)

    entries["conv1.weight"] = (64, 3, 7, 7)
    batchnorm("bn1", 64)
    in_channels = 64
    for stage, (planes, count) in enumerate(
        zip((64, 128, 256, 512), blocks[depth], strict=True), start=1
    ):
        for b in range(count):
            p = f"layer{stage}.{b}"
            out_channels = planes * expansion
            if basic:
                entries[f"{p}.conv1.weight"] = (planes, in_channels, 3, 3)
                batchnorm(f"{p}.bn1", planes)
                entries[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                batchnorm(f"{p}.bn2", planes)
            else:
                entries[f"{p}.conv1.weight"] = (planes, in_channels, 1, 1)
                batchnorm(f"{p}.bn1", planes)
                entries[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                batchnorm(f"{p}.bn2", planes)
                entries[f"{p}.conv3.weight"] = (out_channels, planes, 1, 1)
                batchnorm(f"{p}.bn3", out_channels)
            if b == 0 and (stage > 1 or in_channels != out_channels):
                entries[f"{p}.downsample.0.weight"] = (out_channels, in_channels, 1, 1)
                batchnorm(f"{p}.downsample.1", out_channels)
            in_channels = out_channels
    if classifier:
        entries["fc.weight"] = (1000, in_channels)
        entries["fc.bias"] = (1000,)
    return entries


def random_state_dict(entries):
    """Distinct random values for every entry (int64 counters for BatchNorm)."""
    return {
        name: torch.randint(0, 100, shape)
        if name.endswith("num_batches_tracked")
        else torch.randn(shape)
        for name, shape in entries.items()
    }


def assert_model_holds(model, state_dict, prefix=""):
    own = model.state_dict()
    for name, value in state_dict.items():
        if name.startswith(prefix) and name[len(prefix) :] in own:
            assert torch.equal(own[name[len(prefix) :]], value), name


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_model_names_and_shapes_equal_torchvision_without_classifier(depth):
    state = ResNet(depth=depth).state_dict()
    expected = torchvision_resnet_entries(depth, classifier=False)
    assert {name: tuple(value.shape) for name, value in state.items()} == expected


def test_imagenet_file_with_torchvision_names_loads_strictly_and_ignores_fc(tmp_path):
    entries = torchvision_resnet_entries(50)
    state_dict = random_state_dict(entries)
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(state_dict, path)
    model = ResNet(depth=50)
    report = load_backbone_weights(model, path)
    assert report.ignored == IMAGENET_CLASSIFIER_KEYS == ("fc.weight", "fc.bias")
    assert report.filled == ()
    assert len(report.loaded) == 318
    assert_model_holds(model, state_dict)


def test_old_file_without_batchnorm_counters_loads_and_counters_are_reset(tmp_path):
    entries = torchvision_resnet_entries(18, counters=False)
    state_dict = random_state_dict(entries)
    path = tmp_path / "resnet18_2017.pth"
    torch.save(state_dict, path)
    model = ResNet(depth=18)
    model.bn1.num_batches_tracked.fill_(7)
    report = load_backbone_weights(model, path)
    num_batchnorms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert len(report.filled) == num_batchnorms == 20
    assert all(name.endswith("num_batches_tracked") for name in report.filled)
    assert model.bn1.num_batches_tracked.item() == 0
    assert_model_holds(model, state_dict)


def test_prohmr_lightning_checkpoint_loads_with_backbone_prefix_stripped(tmp_path):
    backbone = random_state_dict(torchvision_resnet_entries(18, classifier=False))
    checkpoint = {
        "epoch": 3,
        "global_step": 1000,
        "state_dict": {
            **{f"backbone.{name}": value for name, value in backbone.items()},
            "flow.flow._transform.dummy_buffer": torch.zeros(()),
            "discriminator.D_conv1.bias": torch.zeros(32),
            "initialized": torch.tensor(True),
        },
    }
    path = tmp_path / "checkpoint.pt"
    torch.save(checkpoint, path)
    model = ResNet(depth=18)
    report = load_backbone_weights(model, path, prefix="backbone.")
    assert set(report.ignored) == {
        "flow.flow._transform.dummy_buffer",
        "discriminator.D_conv1.bias",
        "initialized",
    }
    assert_model_holds(model, backbone)


def test_prefixed_checkpoint_without_prefix_fails_with_a_hint(tmp_path):
    backbone = random_state_dict(torchvision_resnet_entries(18, classifier=False))
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in backbone.items()}}, path)
    with pytest.raises(WeightsMismatchError, match=r"pass prefix='backbone\.'"):
        load_backbone_weights(ResNet(depth=18), path)


def test_lifting_checkpoint_fills_fcresnet_with_backbone_prefix():
    source = FCResNet(in_features=34, hidden_features=16, out_features=16, num_blocks=2)
    state = {
        f"backbone.{k}": torch.randn_like(v, dtype=torch.float32) if v.is_floating_point() else v
        for k, v in source.state_dict().items()
    }
    state["flow.flow._transform.dummy_buffer"] = torch.zeros(())
    model = FCResNet(in_features=34, hidden_features=16, out_features=16, num_blocks=2)
    report = load_backbone_state_dict(model, {"state_dict": state}, prefix="backbone.")
    assert len(report.loaded) == 35
    assert report.ignored == ("flow.flow._transform.dummy_buffer",)
    assert_model_holds(model, state, prefix="backbone.")


def test_missing_unexpected_and_misshapen_keys_are_all_listed_and_nothing_is_loaded():
    state_dict = random_state_dict(torchvision_resnet_entries(18))
    del state_dict["layer2.1.bn2.running_var"]
    state_dict["layer5.0.conv1.weight"] = torch.randn(3)
    state_dict["conv1.weight"] = torch.randn(64, 3, 3, 3)
    model = ResNet(depth=18)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsMismatchError) as caught:
        load_backbone_state_dict(model, state_dict, source="test weights")
    error = caught.value
    assert error.missing == ("layer2.1.bn2.running_var",)
    assert error.unexpected == ("layer5.0.conv1.weight",)
    assert error.mismatched == (("conv1.weight", (64, 3, 3, 3), (64, 3, 7, 7)),)
    message = str(error)
    assert message.startswith(
        "cannot load weights from test weights into ResNet: 1 missing, 1 unexpected, "
        "1 with a wrong shape (nothing was loaded)"
    )
    assert "missing keys: layer2.1.bn2.running_var" in message
    assert "unexpected keys: layer5.0.conv1.weight" in message
    assert "wrong shapes: conv1.weight (file (64, 3, 3, 3), model (64, 3, 7, 7))" in message
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_error_is_a_value_error_and_long_listings_are_truncated():
    with pytest.raises(ValueError, match=r"(?s)100 missing, 0 unexpected.*\(80 more\)"):
        load_backbone_state_dict(ResNet(depth=18), {})


def test_classifier_keys_are_unexpected_when_not_ignored():
    state_dict = random_state_dict(torchvision_resnet_entries(18))
    with pytest.raises(WeightsMismatchError, match=r"unexpected keys: fc\.weight, fc\.bias"):
        load_backbone_state_dict(ResNet(depth=18), state_dict, ignore_keys=())


def test_non_tensor_value_is_reported_as_a_wrong_shape():
    state_dict = random_state_dict(torchvision_resnet_entries(18))
    state_dict["bn1.weight"] = [1.0] * 64
    with pytest.raises(WeightsMismatchError, match=r"bn1\.weight \(file not a tensor, model"):
        load_backbone_state_dict(ResNet(depth=18), state_dict)


def test_missing_file_raises_file_not_found(tmp_path):
    missing = tmp_path / "resnet50-19c8e357.pth"
    with pytest.raises(FileNotFoundError, match=r"backbone weights file not found: .*19c8e357"):
        load_backbone_weights(ResNet(depth=18), missing)


def test_unreadable_file_raises_value_error(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"cannot read backbone weights from .*broken\.pth"):
        load_backbone_weights(ResNet(depth=18), path)


def test_file_with_arbitrary_objects_is_refused_by_weights_only(tmp_path):
    path = tmp_path / "pickled_object.pth"
    torch.save({"conv1.weight": torch.zeros(1), "callback": object()}, path)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        load_backbone_weights(ResNet(depth=18), path)


def test_rejects_something_that_is_not_a_mapping():
    with pytest.raises(TypeError, match=r"must be a mapping from parameter names to tensors"):
        load_backbone_state_dict(ResNet(depth=18), [torch.zeros(1)])
