"""The source texts' counts (docs/profiling.md, "The source texts' numbers, reconciled"), each pinned."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models import create_model
from cnnlab.profile import profile_model

FIVE_BLOCKS = dict(blocks=5, filters=64, organisation="same", padding=0, kernel_size=3, pool="max", dense=1024,
                   image_size=274, in_channels=3, num_classes=10)


def _keras_like_count() -> int:
    """The text's network as Keras builds it: conv (with bias) -> BN -> ReLU -> pool; parameters + BN moving stats."""
    layers, ch, side = [], 3, 274
    for _ in range(5):
        layers += [nn.Conv2d(ch, 64, 3, bias=True), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2)]
        ch, side = 64, (side - 2) // 2
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * side * side, 1024), nn.ReLU(), nn.Linear(1024, 10))
    params = sum(p.numel() for p in net.parameters())
    moving = sum(m.running_mean.numel() + m.running_var.numel() for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    return params + moving


def test_the_parameter_difference_is_keras_batch_norm():
    plain = profile_model(create_model("convnet", norm="none", **FIVE_BLOCKS), (3, 274, 274))
    with_bn = create_model("convnet", norm="batchnorm", **FIVE_BLOCKS)
    bn = profile_model(with_bn, (3, 274, 274))
    assert (plain.params, plain.macs) == (2_520_074, 987_301_888)
    assert (bn.params, bn.macs) == (2_520_394, 987_301_888)  # conv biases dropped, BN scale + shift added
    buffers = sum(b.numel() for name, b in with_bn.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert buffers == 640 and bn.params + buffers + 5 * 64 == 2_521_354 == _keras_like_count()


def test_the_conventions_that_do_not_give_the_texts_computations():
    macs = 987_301_888
    sizes, cins = [272, 134, 65, 30, 13], [3, 64, 64, 64, 64]
    biases = sum(h * h * 64 for h in sizes) + 1024 + 10
    assert macs + biases == 993_525_898 and 2 * macs == 1_974_603_776
    same = sum(h * h * 64 * 9 * c for h, c in zip([274, 137, 68, 34, 17], cins)) + 8 * 8 * 64 * 1024 + 10_240
    assert same == 1_049_563_904
    assert 319_742_356 == 4 * 79_935_589 and 319_742_356 % 64 != 0
    second_conv = 134 * 134 * 64 * 9 * 64
    assert second_conv == 661_929_984 and round(second_conv / macs, 2) == 0.67


def test_the_one_by_one_bottleneck():
    direct = profile_model(create_model("convnet", blocks=1, filters=32, kernel_size=5, padding="same", pool="none",
                                        norm="none", in_channels=192, image_size=28, dense=0), (192, 28, 28))
    bottleneck = profile_model(create_model("convnet", blocks=2, filters=[16, 32], kernel_size=[1, 5], padding="same",
                                            pool="none", norm="none", in_channels=192, image_size=28, dense=0),
                               (192, 28, 28))
    convs = lambda prof: [r.macs for r in prof.rows if r.type == "Conv2d"]  # noqa: E731
    assert convs(direct) == [28 * 28 * 32 * 5 * 5 * 192] == [120_422_400]
    assert convs(bottleneck) == [2_408_448, 10_035_200] and sum(convs(bottleneck)) == 12_443_648
    assert direct.macs - 120_422_400 == bottleneck.macs - 12_443_648 == 28 * 28 * 32 * 10  # the output layer
    assert round(120_422_400 / 12_443_648, 1) == 9.7
    torch.testing.assert_close(torch.tensor(28 * 28 * 16 * 192 + 28 * 28 * 32 * 25 * 16), torch.tensor(12_443_648))
