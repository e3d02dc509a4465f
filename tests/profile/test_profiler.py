"""The profiler's counts: exact against FlopCounterMode and by hand; the model is left as it was."""

from __future__ import annotations

import statistics
import time
from fractions import Fraction

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models
from cnnlab.models.efficientnet_lite import SameConv2d
from cnnlab.profile import profile_model, smallest_square_input, time_model


def empty_model(name: str, **options) -> nn.Module:
    """A model with uninitialised weights (built on the meta device): counts do not need values."""
    with torch.device("meta"):
        model = create_model(name, **options)
    return model.to_empty(device="cpu")


def _zero_tap_macs(conv, x, out) -> int:
    """The multiply-adds on the zero taps SameConv2d adds (stride 2, even side): executed, not counted."""
    if conv.stride[0] == 1:
        return 0
    kh, kw = conv.kernel_size
    top, left = 1 - x.shape[-2] % 2, 1 - x.shape[-1] % 2
    return out.numel() * (conv.in_channels // conv.groups) * ((kh + top) * (kw + left) - kh * kw)


@pytest.mark.parametrize("name", list_models())
def test_counts_equal_flop_counter_and_parameters(name):
    """The profile's MACs are the network's arithmetic; torch's FlopCounter, an independent count, agrees."""
    model = create_model(name)
    size = model.default_input_size
    try:  # size-agnostic models are counted at 16x16 to keep this quick
        prof = profile_model(model, (size[0], 16, 16))
        size = (size[0], 16, 16)
    except CnnlabError:
        prof = profile_model(model, size)
    zero_taps = []  # SameConv2d's stride-2 convs on an even side run one zero tap more per axis than they count
    hooks = [m.register_forward_hook(lambda m, i, o: zero_taps.append(_zero_tap_macs(m, i[0], o)))
             for m in model.modules() if isinstance(m, SameConv2d)]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, *size))
    for hook in hooks:
        hook.remove()
    assert prof.flops == 2 * prof.macs == counter.get_total_flops() - 2 * sum(zero_taps)
    assert prof.params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in prof.rows) == prof.params


def test_published_resnet18_counts_directly_at_224():
    prof = profile_model(empty_model("resnet18", num_classes=1000, variant="imagenet"), (3, 224, 224))
    assert (prof.params, prof.macs) == (11_689_512, 1_814_073_344)


@pytest.mark.parametrize(
    "name, options, params, macs, published",
    [
        ("resnet18", {}, 11_689_512, 1_814_073_344, "1.814"),
        ("resnet50", {}, 25_557_032, 4_089_184_256, "4.089"),
        ("mobilenet_v2", {}, 3_504_872, 300_774_272, "0.301"),
        ("vgg16", {}, 138_357_544, 15_470_264_320, "15.470"),
    ],
)
def test_published_imagenet_counts(name, options, params, macs, published):
    """At 224x224 every map is exactly 7x7 times its size at 32x32 (all strides divide 32), so the
    conv MACs scale by 49 while the head after global pooling costs the same: counted at 32x32."""
    model = empty_model(name, num_classes=1000, variant="imagenet", **options)
    prof = profile_model(model, (3, 32, 32))
    conv = sum(r.macs for r in prof.rows if r.type == "Conv2d")
    linear = sum(r.macs for r in prof.rows if r.type == "Linear")
    assert conv + linear == prof.macs
    assert (prof.params, 49 * conv + linear) == (params, macs)
    assert f"{macs / 1e9:.3f}" == published


def _convnet_by_hand():
    """The worked example of docs/profiling.md: per-layer (output, params, MACs) from the formulas."""
    rows, side, ch = [], 274, 3
    for _ in range(5):
        side -= 2  # 3x3 conv, no padding
        rows.append(("Conv2d", (64, side, side), 3 * 3 * ch * 64 + 64, side * side * 64 * 3 * 3 * ch))
        side //= 2  # 2x2 max-pool
        rows.append(("MaxPool2d", (64, side, side), 0, 0))
        ch = 64
    flat = 64 * side * side
    rows.append(("Linear", (1024,), flat * 1024 + 1024, flat * 1024))
    rows.append(("Linear", (10,), 1024 * 10 + 10, 1024 * 10))
    return rows


def test_worked_example_matches_hand_computation():
    model = create_model("convnet", blocks=5, filters=64, organisation="same", padding=0, kernel_size=3, pool="max",
                         norm="none", dense=1024, image_size=274, in_channels=3, num_classes=10)
    prof = profile_model(model, (3, 274, 274))
    rows = [(r.type, r.output_shape[1:], r.params, r.macs) for r in prof.rows if r.type in ("Conv2d", "MaxPool2d",
                                                                                          "Linear")]
    assert rows == _convnet_by_hand()
    assert (prof.params, prof.macs) == (2_520_074, 987_301_888)


def test_depthwise_separable_ratio():
    n, f, c, side = 512, 5, 64, 12
    standard = nn.Conv2d(c, n, f, padding=2, bias=False)
    separable = nn.Sequential(nn.Conv2d(c, c, f, padding=2, groups=c, bias=False), nn.Conv2d(c, n, 1, bias=False))
    ratio = Fraction(profile_model(separable, (c, side, side)).macs, profile_model(standard, (c, side, side)).macs)
    assert ratio == Fraction(1, n) + Fraction(1, f * f)
    assert round(float(ratio), 3) == 0.042


def test_profiling_leaves_the_model_unchanged():
    model = create_model("resnet18", num_classes=10).train()
    model.features.layer2.eval()  # a mixed-mode model: each module's flag must come back
    modes = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for size in [(3, 16, 16), (1, 16, 16)]:  # the second fails (wrong channel count)
        try:
            profile_model(model, size)
        except CnnlabError:
            pass
    time_model(model, (3, 8, 8), batch_size=2, warmup=1, repeats=1)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    for key, value in model.state_dict().items():  # weights and batch-norm statistics untouched
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in model.parameters())


def test_frozen_and_shared_parameters():
    shared = nn.Linear(8, 8)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), shared, shared, nn.Linear(8, 2))
    model[0].requires_grad_(False)
    prof = profile_model(model, (3, 8, 8))
    assert (prof.params_trainable, prof.params_frozen) == (72 + 18, 224)
    assert [r.name for r in prof.rows if r.type == "Linear"] == ["3", "3#2", "5"]  # a second call is its own row
    assert [r.macs for r in prof.rows if r.type == "Linear"] == [64, 64, 16]  # each call costs, params count once
    assert prof.rows[0].params_frozen == 224 and prof.rows[0].activation_bytes == 8 * 6 * 6 * 4


def test_too_small_input_names_the_layer_and_the_minimum():
    model = create_model("vgg11", num_classes=10)
    with pytest.raises(CnnlabError) as err:
        profile_model(model, (3, 16, 16), name="vgg11")
    text = str(err.value)
    assert "'features.28' (MaxPool2d)" in text and "3x32x32" in text and "3x16x16" in text
    assert smallest_square_input(model.features.eval(), 3) == 32


def test_head_built_for_another_size_is_explained():
    model = create_model("lenet5", in_channels=1, image_size=32, activation="relu", pool="max")
    with pytest.raises(CnnlabError, match="rebuild the model with image_size=40"):
        profile_model(model, (1, 40, 40))


@pytest.mark.parametrize("size", [(3, 32), (3, 0, 32), (3.0, 32, 32)])
def test_bad_input_size_values(size):
    with pytest.raises(CnnlabError, match="three positive integers"):
        profile_model(create_model("lenet5"), size)


def test_timing_reports_median_min_max_of_exactly_the_timed_calls(monkeypatch):
    # A clock that moves only when the model runs, by a planned number of seconds per call:
    # every figure time_model reports can then be computed by hand.
    clock = [0.0]
    planned = iter([0.5, 0.003, 0.001, 0.004, 0.001, 0.005,  # inference: 1 warm-up, 5 timed calls
                    0.5, 0.020, 0.010, 0.060, 0.030, 0.050])  # training steps: the same
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])

    class Ticking(nn.Module):  # the clock and the plan are shared with the copy timed for training
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            clock[0] += next(planned)
            return self.fc(x.flatten(1))

    inference, step = time_model(Ticking(), (1, 2, 2), batch_size=2, warmup=1, repeats=5)
    assert next(planned, None) is None  # exactly warm-up + repeats calls per mode
    assert (inference.mode, inference.repeats, step.mode, step.repeats) == ("inference", 5, "train_step", 5)
    assert inference.median_ms == pytest.approx(statistics.median([3, 1, 4, 1, 5]))  # the warm-up is not counted
    assert (inference.min_ms, inference.max_ms) == (pytest.approx(1), pytest.approx(5))
    assert inference.images_per_second == pytest.approx(2 / 0.003)
    assert (step.median_ms, step.min_ms, step.max_ms) == (pytest.approx(30), pytest.approx(10), pytest.approx(60))
