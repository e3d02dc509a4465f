"""One shared check over every registered model: shape, finiteness, gradients, a few steps."""

import importlib.util

import pytest
import torch

from cnnlab.models import create_model, list_models, model_arguments


def build(name, in_channels=3, num_classes=10, size=32):
    kwargs = {"in_channels": in_channels, "num_classes": num_classes}
    if "image_size" in model_arguments(name):
        kwargs["image_size"] = size
    return create_model(name, **kwargs)


def _external() -> list:
    """torchvision and timm architectures (random weights) behind the same interface; timm is in the dev extra."""
    names = ["tv:resnet18", "tv:mobilenet_v3_small"]
    # (timm's resnet18 zero-initialises each block's last BN scale, so its convs get no first-step gradient)
    timm_names = ["timm:efficientnet_lite0", "timm:mobilenetv3_small_050", "timm:xception41"]
    mark = pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm not installed (dev extra)")
    return names + [pytest.param(n, marks=mark) for n in timm_names]


@pytest.mark.parametrize("name", list_models() + _external())
def test_every_model_builds_trains_and_swaps_its_head(name):
    """Shape, finiteness, a gradient for every parameter, falling loss, and the common interface."""
    torch.manual_seed(0)
    size = 64 if ":" in name else 32  # ImageNet networks reduce 32 px to 1 x 1, where batch norm of 1 image fails
    model = build(name, num_classes=4, size=size)
    x = torch.randn(4, 3, size, size)  # CIFAR-shaped for the zoo; 4 images so batch norm has statistics
    y = torch.arange(4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    losses = []
    for step in range(3):
        out = model(x)
        assert out.shape == (4, 4) and torch.isfinite(out).all()
        loss = torch.nn.functional.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            missing = [n for n, p in model.named_parameters()
                       if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
            assert not missing, f"no gradient reaches {missing}"
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    assert model.num_classes == 4
    assert model.forward_features(x[:1]).ndim in (2, 4)
    model.reset_head(7)
    assert model.num_classes == 7 and model.eval()(x[:1]).shape == (1, 7)


def test_registry_refuses_duplicates_and_suggests_names():
    from cnnlab.errors import CnnlabError
    from cnnlab.models import register_model

    with pytest.raises(CnnlabError, match="already registered"):
        register_model("resnet9")(lambda: None)
    with pytest.raises(CnnlabError, match="did you mean 'resnet9'"):
        create_model("resnet99")
    with pytest.raises(CnnlabError, match="has no option 'filtres'; did you mean 'filters'"):
        create_model("convnet", filtres=3)


def test_convnet_options_shape_the_network():
    from torch import nn

    net = create_model("convnet", blocks=3, filters=8, organisation="double", kernel_size=[5, 3, 3],
                       norm_position="after", dropout=0.1, dropout_where="both", pool_first=True)
    convs = [m for m in net.features.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32] and convs[0].kernel_size == (5, 5)
    first_block = list(net.features[0])
    assert isinstance(first_block[1], nn.MaxPool2d) and isinstance(first_block[2], nn.ReLU)
    assert any(isinstance(m, nn.Dropout2d) for m in net.features.modules())
    assert sum(p.numel() for p in create_model("lenet5").parameters()) == 61706


def test_convnet_stride_equals_a_hand_built_torch_network():
    """mnist-speedrun's stem: a stride-2 conv instead of conv + pool at 28x28, "same" padding = ceil(in / stride)."""
    from torch import nn

    net = create_model("convnet", blocks=3, filters=[8, 16, 64], stride=[2, 1, 1], pool=["none", "max", "max"],
                       pool_first=True, dense=0).eval()
    ref = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),         # 28 -> 14
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(16), nn.ReLU(),  # -> 7
        nn.Conv2d(16, 64, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(64), nn.ReLU(),  # -> 3
        nn.Flatten(), nn.Linear(64 * 3 * 3, 10)).eval()
    ours, theirs = list(net.state_dict().values()), ref.state_dict()
    assert [tuple(t.shape) for t in ours] == [tuple(t.shape) for t in theirs.values()]
    gen = torch.Generator().manual_seed(0)
    ref.load_state_dict({k: torch.randn(v.shape, generator=gen).abs() if "running_var" in k else
                         torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
                         for k, v in theirs.items()})
    net.load_state_dict(dict(zip(net.state_dict(), ref.state_dict().values())))
    x = torch.randn(4, 1, 28, 28, generator=gen)
    torch.testing.assert_close(net(x), ref(x))
    # odd sizes round up, as "same" padding does without a stride: 7 -> 4 (stride 2), 7 -> 3 (stride 3)
    for stride, side in ((2, 4), (3, 3)):
        odd = create_model("convnet", blocks=1, filters=4, stride=stride, pool="none", dense=0, image_size=7)
        assert odd.features(torch.randn(1, 1, 7, 7)).shape[-2:] == (side, side)


# Models in their less common forms too: the activation checks below must hold for every shape a config can give.
VARIANTS = [(name, {}) for name in list_models()] + [
    ("convnet", {"norm_position": "after", "pool_first": True, "dense": [16, 8], "convs_per_block": 2,
                 "dropout": 0.1, "dropout_where": "both"}),
    ("resnet18", {"variant": "imagenet", "width": 8}),
    ("resnet50", {"variant": "imagenet", "width": 8}),
    ("mobilenet_v2", {"variant": "imagenet", "width_mult": 0.25}),
    ("inception", {"variant": "imagenet"}),
    ("vgg11", {"variant": "imagenet"}),
]


@pytest.mark.parametrize("name, options", VARIANTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(VARIANTS)])
def test_each_activation_module_is_called_once_and_not_in_place(name, options):
    """DESIGN convention 14: guided backprop and CAM hooks need one module per use, never in-place."""
    from cnnlab.models.layers import ACTIVATIONS

    model = create_model(name, in_channels=3, num_classes=4, image_size=32, **options).eval()
    acts = {n: m for n, m in model.named_modules() if isinstance(m, tuple(ACTIVATIONS.values()))}
    assert acts, f"{name} has no activation module"
    assert not [n for n, m in acts.items() if getattr(m, "inplace", False)], "in-place activations"
    calls = dict.fromkeys(acts, 0)
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: calls.__setitem__(n, calls[n] + 1))
               for n, m in acts.items()]
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    for handle in handles:
        handle.remove()
    assert max(calls.values()) == 1, {n: c for n, c in calls.items() if c != 1}
    assert min(calls.values()) == 1, "an activation module that the forward never calls"
