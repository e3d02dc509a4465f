"""output_size and padding against hand-computed cases."""

import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.geometry import resolve_padding
from cnnlab.scratch import Conv2d, output_size
from cnnlab.scratch.geometry import conv_geometry


@pytest.mark.parametrize(
    "size, kernel, stride, padding, dilation, expected",
    [
        (274, 3, 1, 0, 1, 272),  # 274x274, 3x3, stride 1, no padding -> 272x272
        (8, 3, 1, 1, 1, 8),  # 8 + 2 = 10 padded, 10 - 3 + 1
        (8, 1, 1, 1, 1, 10),  # a 1x1 kernel sees the whole 10x10 padded image
        (32, 5, 1, 0, 1, 28),  # LeNet C1
        (227, 11, 4, 0, 1, 55),  # AlexNet conv1: (227 - 11) / 4 + 1
        (224, 7, 2, 3, 1, 112),  # ResNet stem
        (7, 3, 2, 0, 1, 3),  # floor((7 - 3) / 2) + 1
        (8, 3, 2, 0, 1, 3),  # floor((8 - 3) / 2) + 1 = 3 (the last column is never reached)
        (10, 3, 1, 0, 2, 6),  # dilation 2: extent 5
        (28, 3, 1, "same", 1, 28),
        (28, 4, 1, "same", 2, 28),
        (28, 3, 1, "valid", 1, 26),
        (5, 5, 1, 0, 1, 1),  # kernel exactly the input
    ],
)
def test_output_size_hand_computed(size, kernel, stride, padding, dilation, expected):
    assert output_size(size, kernel, stride, padding, dilation) == expected


def test_padding_adds_two_p_to_the_input():
    # an 8x8 input with padding 1 becomes 10x10: a 10x10 kernel then fits exactly once
    assert output_size(8, 10, padding=1) == 1
    with pytest.raises(CnnlabError, match="does not fit"):
        output_size(8, 11, padding=1)


@pytest.mark.parametrize("bad", [dict(size=2, kernel=3), dict(size=10, kernel=3, dilation=5), dict(size=4, kernel=0)])
def test_output_size_rejects_kernels_that_do_not_fit(bad):
    with pytest.raises(CnnlabError):
        output_size(**bad)


def test_same_padding_puts_the_extra_zero_after():
    assert resolve_padding("same", (4, 3), (1, 1), (1, 1)) == ((1, 2), (1, 1))
    with pytest.raises(CnnlabError, match="stride 1"):
        resolve_padding("same", (3, 3), (1, 1), (2, 2))


@pytest.mark.parametrize(
    "x_shape, w_shape, groups, message",
    [
        ((28, 28), (4, 1, 3, 3), 1, r"\(N, C, H, W\), got \(28, 28\)"),
        ((2, 3, 8, 8), (4, 2, 3, 3), 1, "has 3"),
        ((2, 3, 8, 8), (4, 1, 3, 3), 2, "divisible by groups=2"),
        ((2, 1, 4, 4), (4, 1, 5, 5), 1, r"does not fit input \(2, 1, 4, 4\)"),
        ((2, 1, 4, 4), (4, 1, 3), 1, "weight of shape"),
    ],
)
def test_shapes_that_do_not_fit_name_what_was_received(x_shape, w_shape, groups, message):
    with pytest.raises(ValueError, match=message):
        conv_geometry(x_shape, w_shape, groups=groups)


def test_conv_layer_does_not_broadcast_a_missing_batch_axis():
    conv = Conv2d(1, 2, 3)
    with pytest.raises(CnnlabError, match="add the missing batch"):
        conv(np.zeros((1, 28, 28), np.float32))
    with pytest.raises(CnnlabError, match="divisible by groups"):
        Conv2d(3, 4, 3, groups=2)


def test_blas_threads_context_restores_the_setting():
    from cnnlab.scratch.threads import blas_threads, get_blas_threads

    before = get_blas_threads()
    with blas_threads(1):
        assert get_blas_threads() in (1, None)
    assert get_blas_threads() == before
