"""The precision setting: checks, the bf16 fallback, and outputs close to fp32."""

from __future__ import annotations

import pytest
import torch

from prohmr_model import precision as prec
from prohmr_model.testing import tiny_model


@pytest.fixture
def no_native_bf16(monkeypatch):
    monkeypatch.setattr(prec, "_cpu_flags", lambda: frozenset({"avx2", "fma"}))


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(prec, "_cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match=r"`precision` must be one of fp32, bf16, fp16, got 'fp8'"):
        prec.resolve_precision("fp8", "cpu")


def test_fp16_needs_cuda():
    with pytest.raises(ValueError, match=r"fp16 needs a CUDA device.*got device cpu"):
        prec.resolve_precision("fp16", "cpu")


def test_bf16_without_native_support_falls_back_with_a_warning(no_native_bf16):
    with pytest.warns(UserWarning, match="no bf16 instructions.*running in fp32"):
        assert prec.resolve_precision("bf16", "cpu") == "fp32"
    assert prec.resolve_precision("bf16", "cpu", allow_emulated=True) == "bf16"


def test_bf16_with_native_support_is_used(native_bf16):
    assert prec.resolve_precision("bf16", "cpu") == "bf16"
    assert prec.native_bf16("cpu") == (True, "this CPU has avx512_bf16")


def test_fp32_autocast_is_a_no_op():
    x = torch.randn(4, 4)
    with prec.autocast("fp32", "cpu"):
        assert (x @ x).dtype == torch.float32
    with prec.autocast("bf16", "cpu"):
        assert (x @ x).dtype == torch.bfloat16


def test_bf16_model_outputs_are_float32_and_close_to_fp32(no_native_bf16):
    model = tiny_model()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    z = torch.randn(2, 3, 144, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model(images, num_samples=3, z=z)
        assert model.set_precision("bf16", allow_emulated=True) == "bf16"
        low = model(images, num_samples=3, z=z)
    assert low.features.dtype == torch.float32
    assert low.keypoints_3d.dtype == torch.float32
    # bf16 keeps 8 significant bits: features within a few percent of their scale
    scale = reference.features.abs().max()
    assert (low.features - reference.features).abs().max() <= 0.05 * scale
    assert not torch.equal(low.features, reference.features)


def test_the_backbone_is_channels_last_with_the_same_features():
    model = tiny_model()
    assert model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        channels_last = model.features(images)
        model.backbone.to(memory_format=torch.contiguous_format)
        torch.testing.assert_close(model.features(images), channels_last, rtol=1e-4, atol=1e-5)


def test_bf16_runs_the_coupling_networks_in_bf16_in_eval_mode_only(no_native_bf16):
    model = tiny_model()
    conditioner = model.flow.flow.conditioners[0]
    seen = []
    conditioner.final_layer.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    features = torch.randn(2, model.backbone.num_features)
    model.set_precision("bf16", allow_emulated=True)
    with torch.no_grad():
        output = model.decode(features, num_samples=2)
    assert seen[-1] == torch.bfloat16 and output.pose_6d.dtype == torch.float32
    model.train()
    model.decode(features, num_samples=2)
    assert seen[-1] == torch.float32
    model.eval()
    model.set_precision("fp32")
    with torch.no_grad():
        model.decode(features, num_samples=2)
    assert seen[-1] == torch.float32
