"""Sanity checks of every attribution method on a trained run: model randomization and deletion.

    python benchmarks/explain_sanity.py RUN_DIR [--images 100] [--randomization-images 24]

Prints, per method: the mean Spearman rank correlation between the run's maps and those of the same
network with freshly initialised weights (signed maps, and their absolute values), and the mean drop
of the target probability when the top 10% attributed pixels are blacked out versus a random 10%.
The tests (tests/explain/test_sanity.py) assert the same quantities on a smaller run.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def average_ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks along the last axis with ties sharing their mean rank."""
    out = []
    for row in v.flatten(1):
        _, inverse, counts = torch.unique(row, return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).double()
        out.append((ends - (counts.double() - 1) / 2)[inverse])
    return torch.stack(out)


def spearman(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denom = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(denom > 0, (ra * rb).sum(1) / denom.clamp_min(1e-12), torch.zeros_like(denom)).numpy()


def main() -> None:
    from cnnlab.explain import METHOD_NAMES, get_method
    from cnnlab.explain.workflow import load_run_data, model_inputs, run_method_options
    from cnnlab.runs import build_model, load_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--randomization-images", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = load_run(args.run_dir)
    data = load_run_data(run)
    torch.manual_seed(12345)
    random_model = build_model(run.config, run.input_size, run.num_classes).eval()
    n, (c, h, w) = args.images, run.input_size
    x, y = model_inputs(run, data.test_x[:n]), data.test_y[:n]
    black = model_inputs(run, torch.zeros(1, c, 1, 1, dtype=torch.uint8)).view(1, c, 1)  # (1, C, 1)
    k = int(0.1 * h * w)

    def prob(inputs):
        with torch.no_grad():
            return run.model(inputs).softmax(1).gather(1, y[:, None])[:, 0]

    def blacked(pixels):  # pixels (n, k) flat indices over H*W, all channels
        out = x.clone().view(n, c, h * w)
        out.scatter_(2, pixels[:, None, :].expand(n, c, k), black.expand(n, c, k))
        return out.view_as(x)

    p0 = prob(x)
    random = torch.rand(n, h * w, generator=torch.Generator().manual_seed(0)).argsort(1)[:, :k]
    drop_random = float((p0 - prob(blacked(random))).mean())
    rows = []
    for name in METHOD_NAMES:
        m = get_method(name)
        options = run_method_options(run, m, data)
        maps = m.attribute(run.model, x, y, **options)
        r = args.randomization_images
        other = m.attribute(random_model, x[:r], y[:r], **options)
        top = maps.flatten(1).argsort(1, descending=True)[:, :k]
        rows.append({"method": name, "spearman_signed": float(spearman(maps[:r], other).mean()),
                     "spearman_abs": float(spearman(maps[:r].abs(), other.abs()).mean()),
                     "deletion_top10": float((p0 - prob(blacked(top))).mean()), "deletion_random10": drop_random})
    if args.json:
        print(json.dumps({"run_dir": args.run_dir, "images": n, "rows": rows}, indent=2))
        return
    print(f"{'method':<22}{'rand. rho':>10}{'|rand.| rho':>12}{'del. top':>10}{'del. rand':>10}")
    for r in rows:
        print(f"{r['method']:<22}{r['spearman_signed']:>10.3f}{r['spearman_abs']:>12.3f}{r['deletion_top10']:>10.3f}"
              f"{r['deletion_random10']:>10.3f}")


if __name__ == "__main__":
    main()
