"""cnnlab.nn layers against F.conv2d / nn.Linear, and every conv_type inside the ConvNet."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.nn import CONV_TYPES, DepthwiseSeparableConv2d, DropConnect, FFTConv2d, SpatiallySeparableConv2d, get_conv


def _cases():
    cases = []
    for stride, padding, dilation, groups, kernel in itertools.product(
        (1, 2, 3), (0, 1, "same", "valid", (2, 1)), (1, 2), (1, 2, 4), (3, (2, 4))
    ):
        if padding == "same" and stride != 1:
            continue
        cases.append(dict(stride=stride, padding=padding, dilation=dilation, groups=groups, kernel_size=kernel))
    return cases


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)], ids=["f64", "f32"])
def test_fft_conv_matches_conv2d_forward_and_backward(dtype, tol):
    """Tolerance: 1e-9 absolute in float64, 1e-4 in float32 (FFT rounding) on values of order 1-10."""
    torch.manual_seed(0)
    for case in _cases():
        ours = FFTConv2d(4, 8, **case).to(dtype)
        ref = nn.Conv2d(4, 8, **case).to(dtype)
        ref.load_state_dict(ours.state_dict())
        x1 = torch.randn(2, 4, 9, 12, dtype=dtype, requires_grad=True)
        x2 = x1.detach().clone().requires_grad_(True)
        y1, y2 = ours(x1), ref(x2)
        assert y1.shape == y2.shape, case
        torch.testing.assert_close(y1, y2, atol=tol, rtol=0, msg=lambda m: f"{case}: {m}")
        dy = torch.randn_like(y1)
        y1.backward(dy)
        y2.backward(dy)
        torch.testing.assert_close(x1.grad, x2.grad, atol=tol, rtol=0)
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=tol * 10, rtol=0)
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, atol=tol * 10, rtol=0)


def test_fft_conv_is_an_nn_conv2d_and_checks_its_input():
    conv = FFTConv2d(3, 4, 5, padding=2, bias=False)
    assert isinstance(conv, nn.Conv2d) and conv.bias is None
    assert conv(torch.randn(1, 3, 8, 8)).shape == (1, 4, 8, 8)
    with pytest.raises(CnnlabError, match=r"\(N, 3, H, W\), got \(3, 8, 8\)"):
        conv(torch.randn(3, 8, 8))
    with pytest.raises(CnnlabError, match="does not fit"):
        FFTConv2d(3, 4, 9)(torch.randn(1, 3, 8, 8))
    with pytest.raises(CnnlabError, match="padding_mode='zeros'"):
        FFTConv2d(3, 4, 3, padding_mode="reflect")


def test_fft_conv_gradients_pass_gradcheck():
    from cnnlab.nn import fft_conv2d

    x = torch.randn(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: fft_conv2d(x, w, b, stride=(2, 1), padding=((1, 2), (1, 1)), dilation=(2, 1), groups=2),
        (x, w, b),
    )


def test_depthwise_separable_equals_its_two_convolutions():
    layer = DepthwiseSeparableConv2d(4, 6, 3, stride=2, padding=1)
    x = torch.randn(2, 4, 9, 9)
    dw = F.conv2d(x, layer.depthwise.weight, None, 2, 1, groups=4)
    expected = F.conv2d(dw, layer.pointwise.weight, layer.pointwise.bias)
    torch.testing.assert_close(layer(x), expected)
    standard = sum(p.numel() for p in nn.Conv2d(4, 6, 3, bias=False).parameters())
    assert sum(p.numel() for p in layer.parameters() if p.dim() == 4) == 4 * 9 + 4 * 6 < standard


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("padding", [0, 2, "same", "valid", (1, 2)])
def test_spatially_separable_equals_a_conv_with_its_rank1_kernels(padding):
    layer = SpatiallySeparableConv2d(3, 4, (5, 3), stride=1, padding=padding, dilation=(1, 2)).double()
    x = torch.randn(2, 3, 11, 12, dtype=torch.float64)
    pad = padding if isinstance(padding, str) else padding
    expected = F.conv2d(x, layer.effective_weight(), layer.horizontal.bias, 1, pad, (1, 2))
    torch.testing.assert_close(layer(x), expected)
    assert torch.linalg.matrix_rank(layer.effective_weight()[0, 0]).item() == 1


def test_dropconnect_drops_weights_for_linear_and_conv():
    torch.manual_seed(0)
    linear = DropConnect(nn.Linear(300, 200), p=0.5)
    x = torch.randn(4, 300)
    y = linear(x)
    assert (y != 0).all()  # activations are not dropped
    assert not torch.allclose(y, linear.layer(x))
    linear.eval()
    torch.testing.assert_close(linear(x), linear.layer(x))
    conv = DropConnect(nn.Conv2d(2, 3, 3, padding=1), p=0.3)
    xi = torch.randn(1, 2, 5, 5, requires_grad=True)
    conv(xi).sum().backward()
    assert conv.layer.weight.grad is not None
    assert conv.eval()(xi).shape == (1, 3, 5, 5)
    with pytest.raises(CnnlabError, match="wraps nn.Linear or nn.Conv2d"):
        DropConnect(nn.ReLU())


def test_get_conv_names_every_type_and_suggests_on_typos():
    assert set(CONV_TYPES) == {"standard", "fft", "depthwise_separable", "spatially_separable"}
    with pytest.raises(CnnlabError, match="did you mean 'fft'"):
        get_conv("fftt")


@pytest.mark.parametrize("conv_type", CONV_TYPES)
def test_convnet_builds_and_backprops_with_each_conv_type(conv_type):
    from cnnlab.models import create_model

    torch.manual_seed(0)
    model = create_model("convnet", filters=8, blocks=2, conv_type=conv_type, dense=16)
    x = torch.randn(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    F.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    convs = [m for m in model.features.modules() if type(m) is get_conv(conv_type)]
    assert len(convs) == 2


def test_convnet_fft_equals_standard_with_the_same_weights():
    from cnnlab.models import create_model

    torch.manual_seed(0)
    standard = create_model("convnet", filters=8, blocks=2, conv_type="standard", dense=16).eval()
    fft = create_model("convnet", filters=8, blocks=2, conv_type="fft", dense=16).eval()
    fft.load_state_dict(standard.state_dict())
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(fft(x), standard(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("stride, dilation, groups", [(1, 1, 1), (2, 3, 2)])
def test_fft_conv_overlap_save_tiles_match_conv2d_on_a_large_image(stride, dilation, groups):
    from cnnlab.nn.fft_conv import choose_tiles

    x = torch.randn(1, 4, 120, 97, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, 5, 5, dtype=torch.float64)
    ext = dilation * 4 + 1
    (th, tw), _ = choose_tiles(1, 4, 6, groups, (124, 101), (ext, ext))
    assert th < 124 or tw < 101  # more than one tile
    conv = FFTConv2d(4, 6, 5, stride=stride, padding=2, dilation=dilation, groups=groups).double()
    with torch.no_grad():
        conv.weight.copy_(w)
    expected = F.conv2d(x, w, conv.bias, stride, 2, dilation, groups)
    torch.testing.assert_close(conv(x), expected, atol=1e-9, rtol=0)
