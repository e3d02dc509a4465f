"""The native EfficientNet-Lite family: published sizes, TensorFlow SAME padding, profile numbers."""

import pytest
import torch

from cnnlab.models import create_model


@pytest.mark.parametrize("name, params, size", [
    ("efficientnet_lite0", 4_652_008, 224),  # the shipped checkpoints' tensor counts (published: 4.7 M, 5.4 M, 6.1 M)
    ("efficientnet_lite1", 5_416_680, 240),
    ("efficientnet_lite2", 6_092_072, 260),
])
def test_published_sizes_and_resolutions(name, params, size):
    net = create_model(name)
    assert sum(p.numel() for p in net.parameters()) == params
    assert net.default_input_size == (3, size, size)
    assert net.features(torch.zeros(1, 3, size, size)).shape == (1, 1280, -(-size // 32), -(-size // 32))


def test_profile_pins_parameters_and_macs(capsys):
    """lite0 at 224: 4,652,008 parameters, 385.2 M MACs (conv + linear; the published 407 M counts more ops)."""
    import json

    from cnnlab.cli import main

    assert main(["profile", "efficientnet_lite0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parameters"] == 4_652_008
    assert report["macs"] == 385_187_552


def test_same_padding_is_tensorflows_grid():
    """A strided conv on an even side pads (0, 1) for k=3 and (1, 2) for k=5; on an odd side symmetrically.

    The reference pads the input explicitly; SameConv2d grows its kernel instead: outputs and gradients agree.
    """
    import torch.nn.functional as F

    from cnnlab.models.efficientnet_lite import SameConv2d, same_pads

    torch.manual_seed(0)
    for k in (3, 5):
        for groups in (1, 2):
            conv = SameConv2d(2, 4, k, stride=2, groups=groups)
            for h, w in ((16, 16), (15, 15), (16, 15), (15, 2)):
                x = torch.randn(2, 2, h, w, requires_grad=True)
                (top, bottom), (left, right) = same_pads(h, k), same_pads(w, k)
                expected = F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, stride=2, groups=groups)
                got = conv(x)
                torch.testing.assert_close(got, expected)
                assert got.shape[-2:] == (-(-h // 2), -(-w // 2))
                # the zero tap the even side adds takes no gradient: weight and input gradients are SAME's
                g = torch.randn_like(got)
                ref_gx, ref_gw = torch.autograd.grad(expected, (x, conv.weight), g)
                gx, gw = torch.autograd.grad(got, (x, conv.weight), g)
                torch.testing.assert_close(gx, ref_gx)
                torch.testing.assert_close(gw, ref_gw)
    assert [same_pads(16, 3), same_pads(16, 5), same_pads(15, 3)] == [(0, 1), (1, 2), (1, 1)]


def test_options_and_bad_values():
    from cnnlab.errors import CnnlabError

    net = create_model("efficientnet_lite0", num_classes=10, dropout=0.0, drop_path=0.2)
    assert net.num_classes == 10 and net.head[2].p == 0.0
    drops = [m.drop_path.p for m in net.modules() if getattr(m, "drop_path", None) is not None]
    assert drops == sorted(drops) and 0 < drops[-1] < 0.2  # the rate grows with depth
    with pytest.raises(CnnlabError, match="drop_path"):
        create_model("efficientnet_lite0", drop_path=1.5)
