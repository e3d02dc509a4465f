"""Attribution methods against answers known in closed form, and the shared check over every model."""

from __future__ import annotations

import doctest
import importlib
import itertools
import math

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.explain import METHODS, get_method
from cnnlab.explain.base import hook_count


def linear_model(channels=1, size=5, classes=3, seed=0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, classes))
    return model


# ------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("channels", [1, 3])
def test_saliency_of_a_linear_model_is_its_weights(channels):
    """logit_t = W[t] . x + b, so d logit_t / dx = W[t] everywhere: saliency = max_c |W[t, c]|."""
    model = linear_model(channels, size=5, classes=3)
    x = torch.randn(4, channels, 5, 5)
    targets = torch.tensor([0, 1, 2, 1])
    maps = get_method("saliency").attribute(model, x, targets)
    weights = model[1].weight.detach().view(3, channels, 5, 5)
    expected = weights[targets].abs().amax(dim=1)  # (4, 5, 5)
    torch.testing.assert_close(maps, expected)


def test_smoothgrad_of_a_linear_model_is_its_weights_whatever_the_noise():
    """The gradient of a linear model does not depend on where it is taken, so averaging over noise changes nothing."""
    model = linear_model(1, size=4, classes=2)
    x = torch.randn(3, 1, 4, 4)
    maps = get_method("smoothgrad").attribute(model, x, 1, samples=5, noise=0.5)
    torch.testing.assert_close(maps, model[1].weight.detach()[1].abs().view(1, 4, 4).expand(3, 4, 4))


def small_cnn(seed=0, act=nn.ReLU, pool=nn.MaxPool2d) -> nn.Module:
    """A nonlinear CNN, so that integration along the path matters."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), act(), pool(2), nn.Conv2d(6, 8, 3),
                         nn.Tanh(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))


@pytest.mark.parametrize("baseline", ["black", "blurred", "mean"])
def test_integrated_gradients_are_complete(baseline):
    """Attributions sum to f(x) - f(baseline) within 1% (Sundararajan et al.'s completeness axiom).

    A smooth CNN (softplus, average pooling, tanh): with ReLU kinks and max-pool switches the
    quadrature error falls only as 1/steps (about 4% at 64 steps, measured), which tests the step
    count rather than the method.
    """
    from cnnlab.explain.integrated_gradients import make_baseline

    model = small_cnn(act=nn.Softplus, pool=nn.AvgPool2d)
    with torch.no_grad():
        model[-1].weight.mul_(20)  # logits of a trained model's size, so the gaps are far from zero
    x = torch.randn(6, 3, 16, 16) * 2
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    black = torch.tensor([-1.0, -0.5, -2.0])  # what a black pixel becomes after some normalisation
    maps = get_method("integrated_gradients").attribute(model, x, target, steps=64, baseline=baseline,
                                                        black=black, mean_colour=0.3)
    base = make_baseline(x, baseline, black, 0.3, 3.0)
    with torch.no_grad():
        gap = (model(x) - model(base)).gather(1, target[:, None])[:, 0]  # f(x) - f(b) for the target
    assert gap.abs().min() > 0.05, gap  # a test that could not fail if the gap were ~0
    assert torch.allclose(maps.sum(dim=(1, 2)), gap, rtol=0.01, atol=1e-4), (maps.sum(dim=(1, 2)), gap)


def test_integrated_gradients_of_a_linear_model_is_weight_times_input():
    model = linear_model(1, size=4, classes=2)
    x = torch.randn(2, 1, 4, 4)
    maps = get_method("integrated_gradients").attribute(model, x, 0, steps=8)
    torch.testing.assert_close(maps, (model[1].weight.detach()[0].view(1, 4, 4) * x[:, 0]), atol=1e-5, rtol=1e-4)


class WeightedSum(nn.Module):
    """Hand-built: logit 0 = sum(w * x) with w fixed; logit 1 = - logit 0."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        s = (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([s, -s], dim=1)


def occlusion_reference(x, w, window, stride, fill):
    """The slow, obvious occlusion: cover each window, record the drop, average over the windows covering a pixel.

    Window starts step by ``stride`` until one reaches the edge; the last one is clipped there
    (ceil((H - window) / stride) + 1 starts), so every pixel is covered.
    """
    n, c, h, wd = x.shape
    starts = lambda size: [k * stride for k in range(math.ceil((size - window) / stride) + 1)]  # noqa: E731
    total = torch.zeros(n, h, wd)
    count = torch.zeros(h, wd)
    f = lambda img: (img * w).sum(dim=(1, 2, 3))  # noqa: E731
    for top, left in itertools.product(starts(h), starts(wd)):
        covered = x.clone()
        covered[:, :, top:top + window, left:left + window] = fill
        drop = f(x) - f(covered)  # (n,)
        total[:, top:top + window, left:left + window] += drop[:, None, None]
        count[top:top + window, left:left + window] += 1
    return total / count.clamp_min(1)


@pytest.mark.parametrize("window,stride", [(1, 1), (3, 1), (4, 2), (3, 3)])
def test_occlusion_on_a_hand_built_model(window, stride):
    torch.manual_seed(0)
    w = torch.randn(1, 2, 8, 8)
    model = WeightedSum(w)
    x = torch.randn(3, 2, 8, 8)
    maps = get_method("occlusion").attribute(model, x, 0, window=window, stride=stride, baseline=0.5,
                                             batch_size=7)
    torch.testing.assert_close(maps, occlusion_reference(x, w, window, stride, 0.5), atol=1e-5, rtol=1e-5)
    # one patch at a time gives the same maps (the benchmark compares their speed)
    slow = get_method("occlusion").attribute(model, x, 0, window=window, stride=stride, baseline=0.5, batched=False)
    torch.testing.assert_close(maps, slow, atol=1e-5, rtol=1e-5)
    if window == 1:  # single pixels: the drop is exactly w * (x - fill), for logit 1 its negative
        torch.testing.assert_close(maps, (w * (x - 0.5)).sum(1), atol=1e-5, rtol=1e-5)
        neg = get_method("occlusion").attribute(model, x, 1, window=1, stride=1, baseline=0.5)
        torch.testing.assert_close(neg, -maps)


def test_gradcam_on_a_hand_built_model():
    """One 1x1 conv feeding a global average pool and a linear layer: CAM = relu(sum_k v_tk A_k) / (h w) * h w."""
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 1)
    head = nn.Linear(3, 2)
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    x = torch.randn(2, 2, 6, 6)
    maps = get_method("gradcam").attribute(model, x, 1, layer="0")
    with torch.no_grad():
        a = conv(x)  # (2, 3, 6, 6)
        alpha = head.weight[1] / 36  # d logit / d A_k(i, j) is v_k / (h w) everywhere: its spatial mean too
        expected = torch.relu((alpha.view(1, 3, 1, 1) * a).sum(1))
    torch.testing.assert_close(maps, expected, atol=1e-6, rtol=1e-5)


def test_gradient_shap_with_one_baseline_and_a_linear_model_is_exact():
    """With a linear model every path point has the same gradient: attribution = w * (x - b) exactly."""
    model = linear_model(1, size=4, classes=2)
    x = torch.randn(2, 1, 4, 4)
    b = torch.randn(1, 1, 4, 4)
    maps = get_method("gradient_shap").attribute(model, x, 1, baselines=b, samples=7)
    torch.testing.assert_close(maps, model[1].weight.detach()[1].view(1, 4, 4) * (x - b)[:, 0], atol=1e-5,
                               rtol=1e-4)


def test_random_methods_repeat_and_leave_the_callers_random_state_alone():
    model = small_cnn()
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = get_method("smoothgrad").attribute(model, x, 0, samples=4, seed=5)
    assert torch.equal(torch.rand(1), expected_next)
    b = get_method("smoothgrad").attribute(model, x, 0, samples=4, seed=5)
    c = get_method("smoothgrad").attribute(model, x, 0, samples=4, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


# ------------------------------------------------------------------ every method on every model

SMALL_OPTIONS = {"integrated_gradients": {"steps": 3}, "smoothgrad": {"samples": 2},
                 "gradient_shap": {"samples": 2}, "occlusion": {"window": 16, "stride": 16}}


def every_model():
    from cnnlab.models import list_models

    return list_models()


@pytest.fixture(scope="module")
def models():
    from cnnlab.models import create_model, model_arguments

    built = {}
    for name in every_model():
        kwargs = {"in_channels": 3, "num_classes": 4}
        if "image_size" in model_arguments(name):
            kwargs["image_size"] = 32
        torch.manual_seed(0)
        built[name] = create_model(name, **kwargs)
    return built


@pytest.mark.parametrize("name", every_model())
def test_every_method_on_every_model(models, name):
    """Shape, finite values, hooks gone, modes and requires_grad restored, inputs unmodified, not all zero."""
    model = models[name].train()  # train mode on purpose: the methods must switch to eval and back
    frozen = next(model.parameters())
    frozen.requires_grad_(False)  # a mix of flags must come back exactly
    flags = [p.requires_grad for p in model.parameters()]
    hooks = hook_count(model)
    torch.manual_seed(1)
    x = torch.randn(1, 3, 32, 32)  # one image keeps the big models fast; batching is tested above
    x_copy = x.clone()
    baselines = torch.randn(3, 3, 32, 32)
    try:
        for method in METHODS:
            options = dict(SMALL_OPTIONS.get(method, {}))
            if method == "gradient_shap":
                options["baselines"] = baselines
            maps = get_method(method).attribute(model, x, torch.tensor([3]), **options)
            assert maps.shape == (1, 32, 32), (method, maps.shape)
            assert torch.isfinite(maps).all(), method
            if get_method(method).uses_layer:  # ReLU(CAM): all zero is a legitimate answer for random weights
                assert (maps >= 0).all(), method
            else:
                assert maps.abs().sum() > 0, f"{method} gave an all-zero map on {name}"
            assert hook_count(model) == hooks, f"{method} left hooks on {name}"
            assert model.training and all(m.training for m in model.modules()), method
            assert [p.requires_grad for p in model.parameters()] == flags, method
            assert torch.equal(x, x_copy) and not x.requires_grad and x.grad is None, method
            assert all(p.grad is None for p in model.parameters()), method
    finally:
        frozen.requires_grad_(True)


class Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("boom")
        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_state_is_restored_after_an_error(method):
    model = Exploding().train()
    model.calls = 1  # the very next forward raises, inside Captum, with its hooks in place
    hooks = hook_count(model)
    with pytest.raises(RuntimeError, match="boom"):
        get_method(method).attribute(model, torch.randn(1, 1, 8, 8), 0, **(
            {"layer": "conv"} if get_method(method).uses_layer else {}))
    assert hook_count(model) == hooks
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_bad_inputs_are_one_line_errors():
    model = small_cnn()
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(CnnlabError, match=r"did you mean 'gradcam'"):
        get_method("grad_cam")
    with pytest.raises(CnnlabError, match=r"expected images of shape \(N, C, H, W\), got \(16, 16\)"):
        get_method("saliency").attribute(model, x[0, 0], 0)
    with pytest.raises(CnnlabError, match="layer 'features.9' is not a layer of this model.*conv layers: 0, 3"):
        get_method("gradcam").attribute(model, x, 0, layer="features.9")
    with pytest.raises(CnnlabError, match="layer '1' is not a conv layer"):
        get_method("gradcam").attribute(model, x, 0, layer="1")
    with pytest.raises(CnnlabError, match="has no option 'step'"):
        get_method("integrated_gradients").attribute(model, x, 0, step=3)
    with pytest.raises(CnnlabError, match="got 3 targets for 2 images"):
        get_method("saliency").attribute(model, x, torch.tensor([0, 1, 2]))


def test_target_out_of_range_names_the_valid_range():
    from cnnlab.models import create_model

    model = create_model("mnist_classic")
    with pytest.raises(CnnlabError, match=r"target class 10 is out of range; valid classes are 0\.\.9"):
        get_method("saliency").attribute(model, torch.randn(1, 1, 28, 28), 10)


@pytest.mark.parametrize("module", ["cnnlab.explain.base", "cnnlab.explain.layers", "cnnlab.explain",
                                    "cnnlab.explain.figures", "cnnlab.explain.filters", "cnnlab.train.trackers"])
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_importing_explain_loads_neither_captum_nor_matplotlib():
    import subprocess
    import sys

    code = ("import sys, cnnlab.explain, cnnlab.commands.explain, cnnlab.commands.report, cnnlab.cli\n"
            "cnnlab.cli.build_parser()\n"
            "print(sorted(m for m in ('captum', 'matplotlib', 'tensorboard', 'mlflow', 'wandb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_captum_is_one_line_saying_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(CnnlabError, match=r"need Captum: pip install 'cnnlab\[explain\]'"):
        get_method("gradcam").attribute(small_cnn(), torch.randn(1, 3, 16, 16), 0)


def test_explaining_a_run_does_not_import_the_trainer():
    import subprocess
    import sys

    code = ("import sys, cnnlab.explain.workflow, cnnlab.explain.views, cnnlab.report.html\n"
            "from cnnlab.explain import METHODS\n"
            "print(sorted(m for m in ('cnnlab.train.trainer', 'cnnlab.train.run', 'cnnlab.train.trackers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_option_values_are_checked():
    model = small_cnn()
    x = torch.randn(1, 3, 16, 16)
    for method, options, message in [
            ("integrated_gradients", {"steps": 10 ** 9}, r"steps in \[1, 4096\]"),
            ("integrated_gradients", {"steps": 2.5}, "steps must be an integer"),
            ("smoothgrad", {"noise": float("nan")}, "noise must be a finite number"),
            ("gradient_shap", {"samples": 0}, r"samples in \[1, 4096\]"),
            ("occlusion", {"window": 99}, "1 <= window <= 16"),
            ("integrated_gradients", {"baseline": "white"}, "is not one of black, mean, blurred")]:
        with pytest.raises(CnnlabError, match=message):
            get_method(method).attribute(model, x, 0, **options)
