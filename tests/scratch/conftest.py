"""Shared checks for the scratch tests: central finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest


def numeric_grad(f, x: np.ndarray, indices, eps: float = 1e-6) -> np.ndarray:
    """Central differences (f(x+eps) - f(x-eps)) / 2eps at the given flat indices of x (changed in place, restored)."""
    flat = x.reshape(-1)
    out = np.empty(len(indices))
    for k, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        out[k] = (up - down) / (2 * eps)
    return out


@pytest.fixture
def numeric_gradient():
    """The :func:`numeric_grad` helper, for tests that probe a function themselves."""
    return numeric_grad


@pytest.fixture
def finite_difference_check():
    """``check(layer, x)``: backward of ``layer`` vs central differences for x and every parameter.

    The scalar is sum(layer(x) * R) for a fixed random R; up to 25 random
    entries of each array are probed. Layers must be float64 and deterministic
    given their state (dropout layers reseed their generator per call).
    """

    def check(layer, x, reseed=None, samples=25, rtol=1e-6, atol=1e-8):
        rng = np.random.default_rng(123)

        def forward():
            if reseed:
                reseed()
            return layer(x)

        y = forward()
        r = rng.standard_normal(y.shape)
        dx = layer.backward(r)
        analytic = {"x": (x, dx)}
        analytic.update({name: (p.value, p.grad.copy()) for name, p in layer.named_params().items()})

        for name, (array, grad) in analytic.items():
            assert grad.shape == array.shape, name
            idx = rng.choice(array.size, size=min(samples, array.size), replace=False)
            num = numeric_grad(lambda: float((forward() * r).sum()), array, idx)
            np.testing.assert_allclose(grad.reshape(-1)[idx], num, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")

    return check
