"""Architecture facts of the zoo: published sizes, shortcuts, stems, branches, layer classes.

Parameter counts of the big ImageNet forms are taken on the meta device
(no memory, no initialisation cost); equality with torchvision is checked
by copying torchvision's weights into ours in order and comparing outputs.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models
from cnnlab.models.mobilenet import InvertedResidual
from cnnlab.models.resnet import BasicBlock, Bottleneck


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def test_zoo_is_registered():
    assert {"lenet5", "resnet18", "resnet34", "resnet50", "mobilenet_v2", "inception", "vgg11", "vgg16"} <= set(
        list_models()
    )


@pytest.mark.parametrize(
    "name, options, published",
    [
        ("resnet18", {}, 11_689_512),
        ("resnet34", {}, 21_797_672),
        ("resnet50", {}, 25_557_032),
        ("mobilenet_v2", {}, 3_504_872),
        ("mobilenet_v2", {"width_mult": 0.5}, 1_968_680),
        ("vgg11", {}, 132_863_336),
        ("vgg16", {}, 138_357_544),
        ("vgg16", {"norm": "batchnorm"}, 138_365_992),  # torchvision vgg16_bn
        # torchvision's googlenet (6,624,904 without aux heads) uses 3x3 where the paper has 5x5;
        # ours follows the paper: + sum(5x5_reduce * 5x5 * (25 - 9)) over the nine modules.
        ("inception", {}, 6_624_904 + 380_928),
    ],
)
def test_published_parameter_counts(name, options, published):
    model = meta_model(name, num_classes=1000, variant="imagenet", **options)
    assert n_params(model) == published


def test_lenet5_is_the_1998_size():
    assert n_params(create_model("lenet5", num_classes=10, in_channels=1)) == 61_706


def _copy_in_order(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter and buffer of ``src`` into ``dst`` by position (shapes must agree)."""
    src_state, dst_state = list(src.state_dict().values()), dst.state_dict()
    assert [tuple(t.shape) for t in src_state] == [tuple(t.shape) for t in dst_state.values()]
    dst.load_state_dict({k: v.clone() for k, v in zip(dst_state, src_state)})


def test_imagenet_resnet_and_mobilenet_are_torchvisions_networks():
    """Same weights in the same order give the same outputs (a 1-block-per-stage ResNet keeps it quick)."""
    from torchvision.models import resnet as tv_resnet

    from cnnlab.models.resnet import ResNet

    class Basic(ResNet):
        block, depths = BasicBlock, (1, 1, 1, 1)

    class Bottle(ResNet):
        block, depths = Bottleneck, (1, 1, 1, 1)

    pairs = [
        (Basic(num_classes=7, variant="imagenet"), tv_resnet.ResNet(tv_resnet.BasicBlock, [1, 1, 1, 1], num_classes=7)),
        (Bottle(num_classes=7, variant="imagenet"), tv_resnet.ResNet(tv_resnet.Bottleneck, [1, 1, 1, 1], num_classes=7)),
        (create_model("mobilenet_v2", num_classes=7, variant="imagenet", width_mult=0.5),
         torchvision.models.mobilenet_v2(num_classes=7, width_mult=0.5)),
    ]
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    for ours, theirs in pairs:
        ours.eval(), theirs.eval()
        _copy_in_order(theirs, ours)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "name, reference, options",
    [
        ("resnet18", "resnet18", {}),
        ("resnet34", "resnet34", {}),
        ("resnet50", "resnet50", {}),
        ("mobilenet_v2", "mobilenet_v2", {}),
        ("vgg11", "vgg11", {}),
        ("vgg16", "vgg16_bn", {"norm": "batchnorm"}),
    ],
)
def test_imagenet_variant_has_torchvisions_tensors_in_order(name, reference, options):
    ours = meta_model(name, num_classes=1000, variant="imagenet", **options)
    with torch.device("meta"):
        theirs = getattr(torchvision.models, reference)()
    assert [tuple(t.shape) for t in ours.state_dict().values()] == [
        tuple(t.shape) for t in theirs.state_dict().values()
    ]


def _shortcuts(model: nn.Module) -> list[str]:
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    return ["identity" if isinstance(b.shortcut, nn.Identity) else "projection" for b in blocks]


def test_resnet_identity_and_projection_shortcuts():
    # ResNet-18: the first block of layers 2-4 changes channels and halves the maps.
    assert _shortcuts(meta_model("resnet18")) == ["identity"] * 2 + (["projection", "identity"] * 3)
    # ResNet-50: layer1's first block already changes 64 -> 256 channels.
    kinds = _shortcuts(meta_model("resnet50"))
    assert kinds == sum((["projection"] + ["identity"] * (n - 1) for n in (3, 4, 6, 3)), [])
    projection = meta_model("resnet50").features.layer2[0].shortcut
    assert projection[0].kernel_size == (1, 1) and projection[0].stride == (2, 2)


def test_resnet_stems():
    cifar = create_model("resnet18", num_classes=10)
    assert cifar.features.stem.conv.kernel_size == (3, 3) and not hasattr(cifar.features.stem, "pool")
    assert cifar.forward_features(torch.zeros(1, 3, 16, 16)).shape == (1, 512, 2, 2)  # 32x32 -> 4x4
    imagenet = meta_model("resnet18", variant="imagenet")
    assert imagenet.features.stem.conv.kernel_size == (7, 7) and imagenet.features.stem.conv.stride == (2, 2)
    assert isinstance(imagenet.features.stem.pool, nn.MaxPool2d)
    assert imagenet.default_input_size == (3, 224, 224) and cifar.default_input_size == (3, 32, 32)


def test_mobilenet_v2_blocks():
    model = create_model("mobilenet_v2", num_classes=10)
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17
    for block in blocks:
        dw = block.depthwise[0]
        assert dw.groups == dw.in_channels == dw.out_channels and dw.kernel_size == (3, 3)
        assert len(block.project) == 2  # conv + norm: the linear bottleneck has no activation
    assert sum(b.use_residual for b in blocks) == 10
    assert any(isinstance(m, nn.ReLU6) for m in model.modules())
    assert model.forward_features(torch.zeros(1, 3, 16, 16)).shape == (1, 1280, 2, 2)  # CIFAR: H/8 (32 -> 4)
    narrow = meta_model("mobilenet_v2", width_mult=0.5)
    assert narrow.features[0][0].out_channels == 16


def test_inception_modules_concatenate_four_branches():
    model = create_model("inception", num_classes=10)
    module = model.features.inception3a
    assert [module.branch1.conv.kernel_size, module.branch3[1].conv.kernel_size, module.branch5[1].conv.kernel_size,
            module.branch_pool[1].conv.kernel_size] == [(1, 1), (3, 3), (5, 5), (1, 1)]
    assert module.branch3[0].conv.out_channels == 96 and module.branch5[0].conv.out_channels == 16  # bottlenecks
    assert module(torch.zeros(1, 192, 8, 8)).shape == (1, 256, 8, 8)
    outs = [m.out_channels for name, m in model.features.named_children() if name.startswith("inception")]
    assert outs == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    assert model.eval().forward_features(torch.zeros(1, 3, 16, 16)).shape == (1, 1024, 4, 4)  # CIFAR: H/4
    imagenet = create_model("inception", num_classes=10, variant="imagenet").eval()
    with torch.no_grad():  # 64 -> 32 -> 16 -> 8 (3a, 3b) -> 4 (4a-4e) -> 2 (5a, 5b); 224 ends at 7x7
        assert imagenet.forward_features(torch.zeros(1, 3, 64, 64)).shape == (1, 1024, 2, 2)


def test_vgg_configurations():
    def convs(model):
        return sum(isinstance(m, nn.Conv2d) for m in model.modules())

    assert convs(meta_model("vgg11")) == 8 and convs(meta_model("vgg16")) == 13
    def norms(model):
        return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())

    assert norms(meta_model("vgg16", variant="imagenet")) == 0  # the paper's network
    assert norms(meta_model("vgg16", variant="imagenet", norm="batchnorm")) == 13
    assert norms(meta_model("vgg16")) == 13 and norms(meta_model("vgg16", norm="none")) == 0  # CIFAR: BN unless told
    head = meta_model("vgg16", variant="imagenet").head
    assert [m.out_features for m in head if isinstance(m, nn.Linear)] == [4096, 4096, 10]


def test_layer_classes_are_passed_in():
    def group_norm(channels: int) -> nn.Module:
        return nn.GroupNorm(4, channels)

    model = create_model("resnet18", norm=group_norm, activation=nn.SiLU)
    kinds = {type(m) for m in model.modules()}
    assert nn.GroupNorm in kinds and nn.SiLU in kinds and nn.BatchNorm2d not in kinds and nn.ReLU not in kinds
    model = create_model("mobilenet_v2", norm="groupnorm", activation="silu")
    assert nn.SiLU in {type(m) for m in model.modules()}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "inception", "vgg11"])
def test_unknown_variant_is_an_error_naming_the_choices(name):
    with pytest.raises(CnnlabError, match="variant=cifar or variant=imagenet"):
        create_model(name, variant="imagent")


@pytest.mark.parametrize("name", ["resnet34", "mobilenet_v2", "inception", "vgg16"])
def test_reset_head(name):
    model = meta_model(name)
    assert model.reset_head(3).num_classes == 3
