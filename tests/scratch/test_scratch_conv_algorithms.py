"""Every conv algorithm, forward and backward, against ``direct`` and ``F.conv2d``.

Tolerances (absolute, on values of order 1-10):
float64 — direct/im2col/winograd 1e-9, fft 1e-8 (FFT rounding grows with the transform size);
float32 — im2col 1e-4, winograd F(2x2) 1e-4, winograd F(4x4) 1e-4 relative, fft 1e-3.
"""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.scratch.algorithms import ALGORITHMS, get_algorithm
from cnnlab.scratch.algorithms.winograd import multiplication_ratio, multiplications
from cnnlab.scratch.geometry import conv_geometry

TOL64 = {"direct": 1e-9, "im2col": 1e-9, "fft": 1e-8, "winograd": 1e-9, "winograd4": 1e-9}
TOL32 = {"direct": 1e-4, "im2col": 1e-4, "fft": 1e-3, "winograd": 1e-4, "winograd4": 1e-4}


def _grid():
    """(x shape, w shape, stride, padding, dilation, groups) over the parametrized grid."""
    cases = []
    for stride, padding, dilation, groups, kernel in itertools.product(
        (1, 2, 3), (0, 1, "same", "valid", (2, 1)), (1, 2), (1, 2, "depthwise"), ((3, 3), (2, 4))
    ):
        if padding == "same" and stride != 1:
            continue
        g = 4 if groups == "depthwise" else groups
        out = 8 if groups == "depthwise" else 6
        cases.append(((2, 4, 9, 12), (out, 4 // g, *kernel), stride, padding, dilation, g))
    cases += [
        ((1, 1, 7, 7), (1, 1, 3, 3), 1, 0, 1, 1),  # batch 1, one channel
        ((1, 1, 8, 8), (3, 1, 3, 3), 2, 1, 1, 1),  # even size, stride 2
        ((3, 2, 5, 16), (2, 2, 3, 3), 1, "same", 2, 1),  # wide, dilated same
        ((2, 3, 10, 6), (4, 3, 5, 1), (2, 1), (2, 0), (1, 1), 1),  # non-square kernel, per-axis stride
        ((2, 3, 6, 6), (4, 3, 6, 6), 1, 0, 1, 1),  # kernel the whole input
        ((1, 2, 4, 4), (2, 2, 1, 1), 1, 0, 1, 1),  # 1x1
    ]
    return cases


def _applies(name, w_shape):
    return not name.startswith("winograd") or tuple(w_shape[2:]) == (3, 3)


CASES = _grid()


def _reference(x, w, b, dy, stride, padding, dilation, groups):
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_algorithm_matches_direct_and_torch(case):
    """Forward y and backward dx, dw, db of each algorithm vs F.conv2d + autograd and vs direct."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(len(str(case)))
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    ref = get_algorithm("direct")
    ry, rctx = ref.forward(x, w, b, stride, padding, dilation, groups)
    dy = rng.standard_normal(ry.shape)
    want = {"direct": (ry, *ref.backward(dy, rctx)), "F.conv2d": _reference(x, w, b, dy, stride, padding, dilation, groups)}
    for name in ALGORITHMS:
        if not _applies(name, w_shape):
            continue
        algo = get_algorithm(name)
        y, ctx = algo.forward(x, w, b, stride, padding, dilation, groups)
        got = (y, *algo.backward(dy, ctx))
        for source, expected in want.items():
            for what, g, e in zip(("y", "dx", "dw", "db"), got, expected):
                assert g.shape == e.shape, (name, what)
                np.testing.assert_allclose(g, e, atol=TOL64[name], rtol=0, err_msg=f"{name} {what} vs {source}")


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_float32_accuracy_fits_each_algorithm(name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    y, ctx = get_algorithm(name).forward(x, w, None, 1, 1)
    dx, dw, _ = get_algorithm(name).backward(np.ones_like(y), ctx)
    assert y.dtype == np.float32 and dx.dtype == np.float32 and dw.dtype == np.float32
    ty = F.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), padding=1).numpy()
    scale = np.abs(ty).max()
    assert np.abs(y - ty).max() / scale < TOL32[name]


def test_dw_sums_over_every_position_where_the_weight_was_applied():
    # one 1x1 kernel on a 3x3 image of ones, stride 1: the weight is used 9 times
    x = np.ones((1, 1, 3, 3))
    for name in ALGORITHMS:
        if name.startswith("winograd"):
            continue
        y, ctx = get_algorithm(name).forward(x, np.full((1, 1, 1, 1), 2.0))
        _, dw, _ = get_algorithm(name).backward(np.ones_like(y), ctx)
        np.testing.assert_allclose(dw, [[[[9.0]]]], atol=1e-9)
    # a 2x2 kernel, stride 2, on a 4x4 image: each weight meets 4 pixels, summing x there
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, ctx = get_algorithm("im2col").forward(x, np.ones((1, 1, 2, 2)), stride=2)
    _, dw, _ = get_algorithm("im2col").backward(np.ones_like(y), ctx)
    np.testing.assert_allclose(dw[0, 0], [[0 + 2 + 8 + 10, 1 + 3 + 9 + 11], [4 + 6 + 12 + 14, 5 + 7 + 13 + 15]])


def test_hand_computed_correlation():
    # deep learning's "convolution" is cross-correlation: the kernel is not flipped
    x = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])[None, None]
    w = np.array([[1.0, 0], [0, -1]])[None, None]
    for name in ("direct", "im2col", "fft"):
        y, _ = get_algorithm(name).forward(x, w)
        np.testing.assert_allclose(y[0, 0], [[1 - 5, 2 - 6], [4 - 8, 5 - 9]], atol=1e-12)


def test_winograd_counts_fewer_multiplications():
    assert multiplication_ratio(2) == 2.25
    geom = conv_geometry((8, 64, 32, 32), (64, 64, 3, 3), padding=1)
    counts = multiplications(geom, m=2)
    assert counts["direct"] / counts["winograd"] == pytest.approx(2.25)
    assert counts["direct"] == 8 * 64 * 64 * 9 * 32 * 32


def test_winograd_refuses_other_kernels_with_the_fix():
    with pytest.raises(CnnlabError, match="3x3 kernels only.*'im2col' or 'fft'"):
        get_algorithm("winograd").forward(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 5, 5)))


def test_unknown_algorithm_suggests_the_nearest():
    with pytest.raises(CnnlabError, match="did you mean 'im2col'"):
        get_algorithm("im2colx")


def test_bias_of_the_wrong_shape_is_refused():
    with pytest.raises(CnnlabError, match=r"bias must have shape \(2,\)"):
        get_algorithm("direct").forward(np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 3, 3)), np.zeros(3))
