import pytest
import torch

from hmr_backbone import FCResNet


def prohmr_lifting_backbone_entries(num_blocks=2, in_features=34, hidden=1024):
    """The state dict of ProHMR's lifting backbone (docs/checkpoints.md#lifting-keys), no prefix."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    entries = {
        "fc_layers.0.fc_block.0.weight": (hidden, in_features),
        "fc_layers.0.fc_block.0.bias": (hidden,),
    }
    entries.update({f"fc_layers.0.fc_block.1.{b}": () if b == bn[-1] else (hidden,) for b in bn})
    for block in range(1, num_blocks + 1):
        for linear, norm in ((0, 1), (4, 5)):
            entries[f"fc_layers.{block}.fc_block.{linear}.weight"] = (hidden, hidden)
            entries[f"fc_layers.{block}.fc_block.{linear}.bias"] = (hidden,)
            for b in bn:
                entries[f"fc_layers.{block}.fc_block.{norm}.{b}"] = () if b == bn[-1] else (hidden,)
    return entries


def test_parameter_names_and_shapes_match_prohmr_lifting_backbone():
    state = FCResNet().state_dict()
    expected = prohmr_lifting_backbone_entries()
    assert len(state) == 35
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


def test_default_and_custom_sizes_give_documented_output_shapes():
    model = FCResNet().eval()
    with torch.no_grad():
        assert model(torch.randn(4, 34)).shape == (4, 1024)
    small = FCResNet(in_features=6, hidden_features=16, out_features=8, num_blocks=3).eval()
    with torch.no_grad():
        assert small(torch.randn(5, 6)).shape == (5, 8)
    assert small.num_features == 8


def test_final_block_exists_only_when_output_size_differs_from_hidden_size():
    same = FCResNet(in_features=4, hidden_features=8, out_features=8, num_blocks=1)
    different = FCResNet(in_features=4, hidden_features=8, out_features=5, num_blocks=1)
    assert len(same.fc_layers) == 2
    assert len(different.fc_layers) == 3
    assert different.fc_layers[2].fc_block[0].weight.shape == (5, 8)


def test_residual_block_adds_its_input_after_the_final_relu_and_dropout():
    model = FCResNet(in_features=4, hidden_features=8, out_features=8, num_blocks=1).eval()
    block = model.fc_layers[1]
    x = torch.randn(3, 8)
    with torch.no_grad():
        # A zero last BatchNorm makes the branch ReLU(0) = 0, so the block is the identity.
        block.fc_block[5].weight.zero_()
        block.fc_block[5].bias.zero_()
        torch.testing.assert_close(block(x), x)
        # A large positive bias passes through the final ReLU and is added to x.
        block.fc_block[5].bias.fill_(2.0)
        torch.testing.assert_close(block(x), x + 2.0)


def test_accepts_any_leading_batch_dimensions():
    model = FCResNet(in_features=6, hidden_features=16, out_features=16, num_blocks=1).eval()
    x = torch.randn(2, 3, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x).reshape(6, 16), model(x.reshape(6, 6)))


def test_eval_mode_is_deterministic_and_train_mode_applies_dropout():
    model = FCResNet(in_features=6, hidden_features=32, out_features=32, num_blocks=2)
    x = torch.randn(8, 6)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


def test_gradients_reach_every_parameter():
    model = FCResNet(in_features=6, hidden_features=16, out_features=12, num_blocks=2).train()
    model(torch.randn(8, 6)).square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_rejects_input_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"`x` must have shape \(\.\.\., 34\), got \(4, 32\)"):
        FCResNet()(torch.randn(4, 32))


def test_rejects_integer_input():
    with pytest.raises(TypeError, match=r"`x` must be a floating-point tensor"):
        FCResNet().eval()(torch.zeros(2, 34, dtype=torch.long))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"in_features": 0}, r"`in_features` must be a positive integer, got 0"),
        ({"num_blocks": -1}, r"`num_blocks` must be >= 0, got -1"),
        ({"dropout": 1.0}, r"`dropout` must be in \[0, 1\), got 1.0"),
    ],
)
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        FCResNet(**options)
