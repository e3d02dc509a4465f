"""Every model option is checked: a bad value is one CnnlabError line naming the option, never a torch error."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlab.models
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, registry

BAD_OPTIONS = [
    # (model, options, a word the one-line error must contain)
    ("lenet5", {"pool": "foo"}, "pool"),
    ("lenet5", {"image_size": None, "in_channels": 0}, "in_channels"),
    ("mnist_classic", {"dropout": 1.5}, "dropout"),
    ("mnist_classic", {"dropout": float("nan")}, "dropout"),
    ("mnist_classic", {"hidden": 0}, "hidden"),
    ("mnist_classic", {"image_size": 0}, "image_size"),
    ("mnist_classic", {"image_size": -5}, "image_size"),
    ("mnist_classic", {"image_size": 10**6}, "image_size"),
    ("mnist_classic", {"num_classes": True}, "num_classes"),
    ("mnist_classic", {"activation": "rleu"}, "activation"),
    ("convnet", {"kernel_size": 0}, "kernel_size"),
    ("convnet", {"kernel_size": "3"}, "kernel_size"),
    ("convnet", {"kernel_size": [3, 0]}, "kernel_size"),
    ("convnet", {"filters": 0}, "filters"),
    ("convnet", {"filters": -3}, "filters"),
    ("convnet", {"filters": 1.5}, "filters"),
    ("convnet", {"filters": [8, 0]}, "filters"),
    ("convnet", {"filters": [8]}, "filters"),
    ("convnet", {"filters": 10**7}, "filters"),
    ("convnet", {"filters": 10**5}, "parameters"),  # 1.8e11 weights: refused before any is allocated
    ("convnet", {"dense": 10**9}, "dense"),
    ("convnet", {"dense": 10**6}, "parameters"),
    ("convnet", {"dense": -4}, "dense"),
    ("convnet", {"blocks": 0}, "blocks"),
    ("convnet", {"blocks": 10**6}, "blocks"),
    ("convnet", {"blocks": 30, "pool": "none"}, "filters"),  # 32 doubled 29 times
    ("convnet", {"padding": "foo"}, "padding"),
    ("convnet", {"stride": 0}, "stride"),
    ("convnet", {"stride": "2"}, "stride"),
    ("convnet", {"stride": [2, 1, 1]}, "stride"),  # blocks=2
    ("convnet", {"stride": [64, 1]}, "shrink"),  # 28 -> 1 pixel, then a 2x2 pool
    ("convnet", {"padding": -1}, "padding"),
    ("convnet", {"convs_per_block": 0}, "convs_per_block"),
    ("convnet", {"pool": "mean"}, "pool"),
    ("convnet", {"pool_first": "yes"}, "pool_first"),
    ("convnet", {"dropout": "x"}, "dropout"),
    ("convnet", {"organisation": "triple"}, "organisation"),
    ("convnet", {"init": "bogus"}, "init"),
    ("convnet", {"global_pool": "sum"}, "global_pool"),
    ("resnet9", {"width": -1}, "width"),
    ("resnet9", {"logit_scale": "x"}, "logit_scale"),
    ("resnet9", {"logit_scale": float("inf")}, "logit_scale"),
    ("resnet9", {"norm": "batchnrom"}, "norm"),
    ("resnet18", {"width": 0}, "width"),
    ("resnet18", {"width": "abc"}, "width"),
    ("resnet18", {"image_size": 0}, "image_size"),
    ("resnet18", {"image_size": 8192}, "image_size"),  # 7e11 activation values for one image
    ("resnet18", {"norm": 5}, "norm"),
    ("resnet18", {"activation": 5}, "activation"),
    ("resnet18", {"zero_init_residual": "yes"}, "zero_init_residual"),
    ("resnet50", {"width": 10**5}, "parameters"),
    ("mobilenet_v2", {"width_mult": 1e-3}, "width_mult"),
    ("mobilenet_v2", {"width_mult": float("inf")}, "width_mult"),
    ("mobilenet_v2", {"width_mult": 0.0}, "width_mult"),
    ("mobilenet_v2", {"dropout": 1.0}, "dropout"),
    ("inception", {"dropout": -0.5}, "dropout"),
    ("vgg11", {"dropout": 2}, "dropout"),
    ("vgg16", {"variant": ["cifar"]}, "variant"),
]


@pytest.mark.parametrize("name, options, word", BAD_OPTIONS,
                         ids=[f"{n}-{'-'.join(map(str, o))}" for n, o, _ in BAD_OPTIONS])
def test_bad_option_is_one_line_naming_it(name, options, word):
    with pytest.raises(CnnlabError) as info:
        create_model(name, **options)
    message = str(info.value)
    assert word in message and f"'{name}'" in message, message
    assert "\n" not in message and len(message) <= 300, message


def test_any_construction_error_becomes_one_line(monkeypatch):
    """A failure inside torch or our code that no check foresaw still names the model and the options."""

    def broken(num_classes: int = 10, depth: int = 3):
        return {"depth": depth} and 1 / 0  # an error no explicit check catches

    def deep(num_classes: int = 10, depth: int = 3):
        raise RuntimeError("something failed\n" + "x" * 10_000)

    for name, constructor, kind in (("broken", broken, "ZeroDivisionError"), ("deep", deep, "RuntimeError")):
        monkeypatch.setitem(registry._REGISTRY, name, constructor)
        with pytest.raises(CnnlabError) as info:
            create_model(name, depth="d" * 5000)
        message = str(info.value)
        assert f"model '{name}'" in message and "depth='ddd" in message and kind in message, message
        assert "\n" not in message and len(message) <= 300


def test_valid_options_at_the_edges_still_build():
    assert create_model("convnet", dense=0, padding=0, kernel_size=[5, 3]).num_classes == 10  # dense=0: no hidden layer
    assert create_model("convnet", filters=[4, 4], dense=[]).num_classes == 10
    assert create_model("mobilenet_v2", width_mult=0.05).num_classes == 10
    assert create_model("lenet5", image_size=None).default_input_size == (1, 32, 32)  # None: the model's own size
    assert create_model("resnet18", image_size=None, variant="imagenet", width=8).default_input_size == (3, 224, 224)


# --- structure: shared pieces live in layers.py / base.py, each family file reads on its own ---

FAMILIES = ("simple", "convnet", "resnet9", "resnet", "mobilenet", "vgg", "inception")


@pytest.mark.parametrize("family", FAMILIES)
def test_family_files_import_no_other_family(family):
    source = (Path(cnnlab.models.__file__).parent / f"{family}.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    others = {f"cnnlab.models.{f}" for f in FAMILIES if f != family}
    assert not imported & others, f"{family}.py imports {imported & others}"


def test_one_conv_norm_act_unit_across_families():
    from cnnlab.models.layers import ConvNormAct

    units = {name: sum(isinstance(m, ConvNormAct) for m in create_model(name).modules())
             for name in ("resnet9", "inception", "mobilenet_v2", "resnet18")}
    assert units == {"resnet9": 8, "inception": 1 + 9 * 6, "mobilenet_v2": 2 + 16 * 3 + 2, "resnet18": 1}
    block = ConvNormAct(4, 8, 5, norm_layer=nn.BatchNorm2d, act_layer=None)
    assert block.conv.padding == (2, 2) and block.conv.bias is None and not hasattr(block, "act")
    plain = ConvNormAct(4, 8, 3, norm_layer=lambda c: nn.Identity())
    assert plain.conv.bias is not None  # no norm: the conv keeps its bias


def _legacy_state(model: nn.Module) -> dict:
    """The state dict as checkpoints written before ConvNormAct stored it: numbered children, no conv bias."""
    from cnnlab.models.layers import ConvNormAct

    prefixes = [name + "." for name, m in model.named_modules() if isinstance(m, ConvNormAct)]
    state = {}
    for key, value in model.state_dict().items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is not None:
            rest = key[len(prefix):]
            if rest == "conv.bias":
                continue
            key = prefix + rest.replace("conv.", "0.", 1).replace("bn.", "1.", 1)
        state[key] = value
    return state


@pytest.mark.parametrize("name, options", [("resnet9", {"width": 8}), ("resnet9", {"width": 8, "norm": "none"}),
                                           ("mobilenet_v2", {"width_mult": 0.25})])
def test_checkpoints_from_before_the_shared_block_still_load(name, options):
    torch.manual_seed(0)
    old = create_model(name, **options).eval()
    with torch.no_grad():
        for m in old.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.zero_()  # what "no bias" computed
    state = _legacy_state(old)
    assert any(".0.weight" in k for k in state)
    new = create_model(name, **options).eval()
    new.load_state_dict(state)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(new(x), old(x))


def test_init_weights_is_one_method_of_the_base_class():
    from cnnlab.models.base import ImageClassifier

    class Tiny(ImageClassifier):
        def __init__(self):
            super().__init__(in_channels=1, num_classes=2, image_size=8)
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(72, 2))

    model = Tiny()
    with torch.no_grad():
        model.features[1].weight.fill_(3.0)
    model.init_weights(conv="kaiming_normal_fan_out", linear="normal_0.01", norm=True)
    assert model.features[1].weight.eq(1).all() and model.head[1].bias.eq(0).all()
    assert model.head[1].weight.std() < 0.05 and model.default_input_size == (1, 8, 8)
    with pytest.raises(CnnlabError, match="unknown weight init 'he'"):
        model.init_weights(conv="he")
