"""benchmarks/lite0_same_conv.py: its old-way conv is the explicit-pad SAME conv, equal to SameConv2d."""

import torch

from tests.benchmarks import load_script


def test_the_input_pad_baseline_computes_what_sameconv2d_computes():
    script = load_script("lite0_same_conv")
    from cnnlab.models.efficientnet_lite import SameConv2d

    torch.manual_seed(0)
    for k, groups, (h, w) in ((3, 1, (16, 16)), (5, 4, (16, 15)), (3, 4, (15, 15))):
        conv = SameConv2d(4, 4, k, stride=2, groups=groups)
        old = SameConv2d(4, 4, k, stride=2, groups=groups)
        old.load_state_dict(conv.state_dict())
        old.__class__ = script.InputPadConv
        x = torch.randn(2, 4, h, w)
        torch.testing.assert_close(old(x), conv(x))
        assert old(x).shape[-2:] == (-(-h // 2), -(-w // 2))
