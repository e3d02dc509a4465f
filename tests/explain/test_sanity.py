"""Are the maps faithful? Sanity checks on a real MNIST model trained in the test session.

- Model randomization (Adebayo et al., 2018): a map that hardly changes when the model's weights are
  replaced by random ones explains the image, not the model. The rank correlation between the trained
  and the re-initialised model's maps must stay below 0.5 (averaged over 24 test images).
- Deletion (Samek et al., 2017): blacking out the 10% of pixels a method ranks highest must lower the
  target probability more than blacking out a random 10% (averaged over 120 test images).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.explain import METHODS, get_method
from cnnlab.explain.workflow import load_run_data, model_inputs, run_method_options


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (as Spearman's coefficient needs): [5, 1, 5] -> [2.5, 1, 2.5]."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(len(values))
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (Pearson's on average ranks; 0 when one map is constant)."""
    ra, rb = average_ranks(a.ravel()), average_ranks(b.ravel())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def test_spearman_reference():
    assert average_ranks(np.array([5.0, 1.0, 5.0])).tolist() == [2.5, 1.0, 2.5]
    x = np.array([0.1, 0.4, 0.2, 0.9])
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(np.array([1.0, 2, 3, 4, 5]), np.array([5.0, 6, 7, 8, 7])) == pytest.approx(0.8207826)


@pytest.fixture(scope="module")
def trained(mnist_run):
    from cnnlab.runs import load_run

    torch.set_num_threads(1)
    run = load_run(mnist_run)
    data = load_run_data(run)
    return run, data


@pytest.mark.parametrize("method", ["gradcam", "integrated_gradients"])
def test_model_randomization(trained, method):
    from cnnlab.runs import build_model

    run, data = trained
    torch.manual_seed(12345)
    random_model = build_model(run.config, run.input_size, run.num_classes).eval()  # same net, fresh weights
    x = model_inputs(run, data.test_x[:24])
    y = data.test_y[:24]
    m = get_method(method)
    options = run_method_options(run, m, data)
    a = m.attribute(run.model, x, y, **options).numpy()
    b = m.attribute(random_model, x, y, **options).numpy()
    assert np.abs(a).sum() > 0 and np.abs(b).sum() > 0
    rho = np.mean([spearman(a[i], b[i]) for i in range(len(a))])
    assert rho < 0.5, f"{method}: mean Spearman {rho:.3f} between the trained and a random model's maps"
    # and the statistic can fail: the same model twice correlates perfectly
    assert np.mean([spearman(a[i], a[i]) for i in range(3)]) == pytest.approx(1.0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_deletion_of_the_top_pixels_hurts_more_than_random(trained, method):
    run, data = trained
    n, k = 120, int(0.1 * 28 * 28)
    images, y = data.test_x[:n], data.test_y[:n]
    x = model_inputs(run, images)
    black = model_inputs(run, torch.zeros(1, 1, 1, 1, dtype=torch.uint8)).item()

    def target_probability(inputs):
        with torch.no_grad():
            return run.model(inputs).softmax(1).gather(1, y[:, None])[:, 0]

    def blacked_out(pixels):  # pixels: (n, k) flat indices
        out = x.clone().flatten(1)
        out.scatter_(1, pixels, black)
        return out.view_as(x)

    m = get_method(method)
    maps = m.attribute(run.model, x, y, **run_method_options(run, m, data))
    top = maps.flatten(1).argsort(dim=1, descending=True)[:, :k]
    random = torch.rand(n, 28 * 28, generator=torch.Generator().manual_seed(0)).argsort(dim=1)[:, :k]
    p = target_probability(x)
    drop_top = (p - target_probability(blacked_out(top))).mean().item()
    drop_random = (p - target_probability(blacked_out(random))).mean().item()
    assert drop_top > drop_random, f"{method}: top-10% deletion lowers p by {drop_top:.3f}, random by {drop_random:.3f}"
