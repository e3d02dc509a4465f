"""cnnlab.models.inference: batch norm folded into the conv before it gives the same outputs, faster layout."""

import doctest
import importlib

import pytest
import torch
from torch import nn

from cnnlab.models import create_model
from cnnlab.models.inference import fold_batchnorm, inference_copy


def _trained_stats(model: nn.Module) -> nn.Module:
    """Random running statistics and affine terms, so folding has something to fold (fresh BN is the identity)."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


@pytest.mark.parametrize("name,size,folds", [("efficientnet_lite0", 64, True), ("resnet18", 32, None),
                                             ("mobilenet_v2", 32, None), ("inception", 32, None)])
def test_the_folded_channels_last_copy_gives_the_models_logits(name, size, folds):
    torch.manual_seed(0)
    model = _trained_stats(create_model(name, num_classes=10, image_size=size))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = inference_copy(model)
    x = torch.rand(3, 3, size, size)
    with torch.no_grad():
        want, got = model(x), fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model itself untouched
    if folds:  # every conv-bn pair of Lite0 (stem, 3 per block but the first's 2, head conv) is folded
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
        assert fast.features.stem.conv.bias is not None


def test_only_a_conv_directly_followed_by_batch_norm_is_folded():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)).eval()
    assert fold_batchnorm(net) == 1
    assert [type(m).__name__ for m in net] == ["Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "Identity"]


def test_docstring_examples():
    result = doctest.testmod(importlib.import_module("cnnlab.models.inference"), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
