"""Every scratch layer's backward vs central finite differences (float64) and vs PyTorch autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab import scratch as S

F64 = np.float64


def _rng(seed=0):
    return np.random.default_rng(seed)


def conv_like(cls, *args, **kwargs):
    return lambda: cls(*args, rng=_rng(1), dtype=F64, **kwargs)


def _torch_conv(layer):
    p = {k: torch.tensor(v.value, requires_grad=True) for k, v in layer.named_params().items()}
    def f(x):
        return F.conv2d(x, p["weight"], p.get("bias"), layer.stride, layer.padding, layer.dilation, layer.groups)
    return f, p


def _torch_chain(layer):
    convs = [(_torch_conv(sub), name) for name, sub in layer.children()]
    params = {f"{name}.{k}": v for (f, p), name in convs for k, v in p.items()}
    def f(x):
        for (g, _), _name in convs:
            x = g(x)
        return x
    return f, params


def _torch_dense(layer):
    p = {k: torch.tensor(v.value, requires_grad=True) for k, v in layer.named_params().items()}
    return (lambda x: F.linear(x, p["weight"], p.get("bias"))), p


def _plain(fn):
    return lambda layer: (fn, {})


# name: (scratch layer factory, input shape, torch twin factory)
LAYERS = {
    **{f"conv-{a}": (conv_like(S.Conv2d, 3, 4, 3, stride=1, padding=1, algorithm=a), (2, 3, 6, 7), _torch_conv)
       for a in ("direct", "im2col", "fft", "winograd", "winograd4")},
    "conv-strided-dilated-groups": (conv_like(S.Conv2d, 4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
                                    (2, 4, 9, 8), _torch_conv),
    "conv-even-kernel-same": (conv_like(S.Conv2d, 2, 3, (2, 4), padding="same", algorithm="fft"), (1, 2, 6, 6),
                              _torch_conv),
    "depthwise": (conv_like(S.DepthwiseConv2d, 3, 3, multiplier=2, padding=1), (2, 3, 6, 6), _torch_conv),
    "depthwise-separable": (conv_like(S.DepthwiseSeparableConv2d, 3, 5, 3, padding="same"), (2, 3, 6, 6),
                            _torch_chain),
    "spatially-separable": (conv_like(S.SpatiallySeparableConv2d, 3, 4, 3, stride=2, padding=1), (2, 3, 7, 6),
                            _torch_chain),
    "dense": (lambda: S.Dense(5, 4, rng=_rng(1), dtype=F64), (3, 5), _torch_dense),
    "relu": (S.ReLU, (3, 10), _plain(F.relu)),
    "leaky-relu": (lambda: S.LeakyReLU(0.1), (3, 10), _plain(lambda x: F.leaky_relu(x, 0.1))),
    "sigmoid": (S.Sigmoid, (3, 10), _plain(torch.sigmoid)),
    "tanh": (S.Tanh, (3, 10), _plain(torch.tanh)),
    "maxpool-tiled": (lambda: S.MaxPool2d(2), (2, 3, 6, 8), _plain(lambda x: F.max_pool2d(x, 2))),
    "maxpool-overlap-pad": (lambda: S.MaxPool2d(3, 2, 1), (2, 2, 7, 6), _plain(lambda x: F.max_pool2d(x, 3, 2, 1))),
    "avgpool": (lambda: S.AvgPool2d(2), (2, 3, 6, 8), _plain(lambda x: F.avg_pool2d(x, 2))),
    "avgpool-overlap-pad": (lambda: S.AvgPool2d(3, 2, 1), (2, 2, 7, 6), _plain(lambda x: F.avg_pool2d(x, 3, 2, 1))),
    "global-avg": (S.GlobalAvgPool, (2, 3, 4, 5), _plain(lambda x: x.mean(dim=(2, 3)))),
    "global-max": (S.GlobalMaxPool, (2, 3, 4, 5), _plain(lambda x: x.amax(dim=(2, 3)))),
    "flatten": (S.Flatten, (2, 3, 4, 5), _plain(lambda x: x.flatten(1))),
}


def _bn_twin(layer):
    p = {k: torch.tensor(v.value, requires_grad=True) for k, v in layer.named_params().items()}
    return (lambda x: F.batch_norm(x, None, None, p["gamma"], p["beta"], training=True)), p


LAYERS["batchnorm-4d"] = (lambda: S.BatchNorm(3, dtype=F64), (4, 3, 3, 3), _bn_twin)
LAYERS["batchnorm-2d"] = (lambda: S.BatchNorm(5, dtype=F64), (6, 5), _bn_twin)


def _set_random_params(layer, rng):
    for p in layer.parameters():
        p.value[...] = rng.standard_normal(p.value.shape)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_backward_matches_finite_differences(name, finite_difference_check):
    make, shape, _ = LAYERS[name]
    layer = make()
    rng = _rng(7)
    if name.startswith("batchnorm"):
        _set_random_params(layer, rng)
    finite_difference_check(layer, rng.standard_normal(shape))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_forward_and_backward_match_torch_autograd(name):
    make, shape, twin = LAYERS[name]
    layer = make()
    rng = _rng(3)
    if name.startswith("batchnorm"):
        _set_random_params(layer, rng)
    x = rng.standard_normal(shape)
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    f, tparams = twin(layer)
    xt = torch.tensor(x, requires_grad=True)
    yt = f(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-10)
    for key, param in layer.named_params().items():
        np.testing.assert_allclose(param.grad, tparams[key].grad.numpy(), atol=1e-10, err_msg=key)


def test_batchnorm_running_averages_and_eval_match_torch():
    rng = _rng(0)
    ours = S.BatchNorm(3, dtype=F64)
    theirs = torch.nn.BatchNorm2d(3).double()
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
        ours(x)
        theirs(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), atol=1e-12)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 5, 5))
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    np.testing.assert_allclose(ours(x), yt.detach().numpy(), atol=1e-12)
    dy = rng.standard_normal(x.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), atol=1e-12)


def test_batchnorm_eval_backward_matches_finite_differences(finite_difference_check):
    layer = S.BatchNorm(3, dtype=F64)
    layer.running_mean[...] = [0.5, -1, 2]
    layer.running_var[...] = [2.0, 0.5, 1.5]
    finite_difference_check(layer.eval(), _rng(2).standard_normal((2, 3, 4, 4)))


def test_dropout_and_dropconnect_backward_match_finite_differences(finite_difference_check):
    drop = S.Dropout(0.4, rng=_rng(0))
    finite_difference_check(drop, _rng(1).standard_normal((4, 6)), reseed=lambda: setattr(drop, "rng", _rng(9)))
    dc = S.DropConnectDense(5, 4, p=0.5, rng=_rng(0), dtype=F64)
    finite_difference_check(dc, _rng(1).standard_normal((3, 5)), reseed=lambda: setattr(dc, "rng", _rng(9)))


def test_dropconnect_drops_weights_not_activations():
    layer = S.DropConnectDense(200, 300, p=0.5, rng=_rng(0), dtype=F64)
    x = _rng(1).standard_normal((2, 200))
    y = layer(x)
    scale = layer._scale  # the weight mask of this batch, scaled by 1/(1-p)
    assert set(np.unique(scale)) == {0.0, 2.0}
    assert abs((scale == 0).mean() - 0.5) < 0.02
    np.testing.assert_allclose(y, x @ (layer.weight.value * scale).T + layer.bias.value, atol=1e-12)
    assert np.count_nonzero(y) == y.size  # no output is dropped: every unit keeps most of its inputs
    layer.eval()
    np.testing.assert_allclose(layer(x), x @ layer.weight.value.T + layer.bias.value, atol=1e-12)


def test_dropout_scales_in_training_and_is_identity_in_eval():
    drop = S.Dropout(0.25, rng=_rng(0))
    x = np.ones((200, 200))
    y = drop(x)
    assert set(np.unique(y)) == {0.0, 4 / 3}
    assert abs(y.mean() - 1.0) < 0.02
    assert drop.eval()(x) is x


def test_softmax_cross_entropy_matches_torch_and_finite_differences(numeric_gradient):
    rng = _rng(0)
    logits = rng.standard_normal((5, 7)) * 3
    labels = rng.integers(0, 7, 5)
    loss = S.SoftmaxCrossEntropy()
    value = loss(logits, labels)
    grad = loss.backward()
    lt = torch.tensor(logits, requires_grad=True)
    ref = F.cross_entropy(lt, torch.tensor(labels))
    ref.backward()
    assert value == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(grad, lt.grad.numpy(), atol=1e-12)
    num = numeric_gradient(lambda: S.SoftmaxCrossEntropy()(logits, labels), logits, range(logits.size))
    np.testing.assert_allclose(grad.reshape(-1), num, atol=1e-8)
    with pytest.raises(ValueError, match=r"labels \(N,\)"):
        loss(logits, labels[:3])


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: S.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
        (lambda p: S.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
        (lambda p: S.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        (lambda p: S.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
        (lambda p: S.Adam(p, lr=0.01, weight_decay=0.1), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    ],
    ids=["sgd", "sgd-momentum-wd", "sgd-nesterov", "adam", "adam-wd"],
)
def test_optimizers_follow_torch_step_by_step(ours, theirs):
    rng = _rng(0)
    start = rng.standard_normal((3, 4))
    p = S.Param(start.copy())
    tp = torch.tensor(start.copy(), requires_grad=True)
    opt, topt = ours([p]), theirs([tp])
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        p.grad = g
        tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.value, tp.detach().numpy(), atol=1e-12)


def test_sequential_backward_and_save_load_roundtrip(tmp_path, finite_difference_check):
    def build(seed):
        r = _rng(seed)
        return S.Sequential(
            S.Conv2d(2, 3, 3, padding=1, rng=r, dtype=F64), S.BatchNorm(3, dtype=F64), S.ReLU(), S.MaxPool2d(2),
            S.Flatten(), S.Dense(12, 4, rng=r, dtype=F64),
        )

    net = build(0)
    x = _rng(1).standard_normal((3, 2, 4, 4))
    finite_difference_check(net, x)
    net.eval()
    path = tmp_path / "net"  # no extension: saved exactly where asked
    net.save(path)
    other = build(5).eval()
    other.load(path)
    np.testing.assert_array_equal(other(x), net(x))
    assert "1.running_var" in net.state_dict()
    with pytest.raises(ValueError, match="missing"):
        S.Sequential(S.Dense(12, 4)).load(path)


def test_decompose_kernel_and_separable_layer_reproduce_a_rank1_kernel():
    rng = _rng(0)
    col, row = rng.standard_normal(5), rng.standard_normal(5)
    kernel = np.outer(col, row)
    c, r, err = S.decompose_kernel(kernel)
    assert err < 1e-12
    np.testing.assert_allclose(np.outer(c, r), kernel, atol=1e-12)
    # a kx1 then 1xk pass equals the full kxk convolution
    layer = S.SpatiallySeparableConv2d(1, 1, 5, padding=2, bias=False, dtype=F64)
    layer.layers[0].weight.value[...] = c.reshape(1, 1, 5, 1)
    layer.layers[1].weight.value[...] = r.reshape(1, 1, 1, 5)
    x = rng.standard_normal((2, 1, 9, 9))
    full, _ = S.get_algorithm("direct").forward(x, kernel[None, None], padding=2)
    np.testing.assert_allclose(layer(x), full, atol=1e-12)
    np.testing.assert_allclose(layer.effective_weight()[0, 0], kernel, atol=1e-12)
    # a full-rank kernel: the error reported is that of the best rank-1 approximation
    k = rng.standard_normal((4, 3, 3))
    c, r, err = S.decompose_kernel(k)
    rel = np.linalg.norm(k - c[..., :, None] * r[..., None, :], axis=(1, 2)) / np.linalg.norm(k, axis=(1, 2))
    np.testing.assert_allclose(err, rel, atol=1e-12)
    assert (err > 0.01).all()


def test_separable_cost_matches_the_formula():
    cost = S.separable_cost(512, 5, in_channels=64, height=32, width=32)
    assert cost["ratio"] == pytest.approx(1 / 512 + 1 / 25)
    assert cost["standard"] == 32 * 32 * 64 * 512 * 25


def test_layers_refuse_wrong_ranks():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got \(3, 4\)"):
        S.MaxPool2d(2)(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(N, 5\) features, got \(2, 4\)"):
        S.Dense(5, 2)(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="3 channels"):
        S.BatchNorm(3)(np.zeros((2, 4, 5, 5)))
