"""Training-step time of MNIST speed-run candidates on this CPU, against the previous mnist-speedrun
network measured in the same run (the groundwork of the stride-2 stem and the 8/16/48 widths).

    PYTHONPATH=src python benchmarks/mnist_step_layouts.py --threads 1 --out-dir benchmarks/results

Each candidate is one training step (forward, cross-entropy, backward, Adam update) on a
channels_last batch of 1x28x28 images, timed with ``torch.utils.benchmark`` in several rounds that
interleave the candidates (a shared machine then slows all of them alike); the best round counts.
MACs per image come from ``cnnlab profile``: two networks with the same MACs can differ by 1.5x here,
since oneDNN's small convolutions run fastest when the CPU's 16-float vectors divide the channel
counts, and a 2x2 max-pool over 28x28 maps costs as much as a convolution.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

from cnnlab.bench.results_io import write_result
from cnnlab.models import create_model
from cnnlab.profile.profiler import profile_model

POOL_STEM = {"blocks": 3, "pool_first": True, "dense": 0}
STRIDE_STEM = {**POOL_STEM, "stride": [2, 1, 1], "pool": ["none", "max", "max"]}
# (name, convnet options, fused Adam); the first row is the baseline every ratio divides by
CANDIDATES = [
    ("8/20/40, conv+pool at 28x28 (previous mnist-speedrun)", {**POOL_STEM, "filters": [8, 20, 40]}, False),
    ("8/16/48, conv+pool at 28x28", {**POOL_STEM, "filters": [8, 16, 48]}, False),
    ("8/20/40, stride-2 stem", {**STRIDE_STEM, "filters": [8, 20, 40]}, False),
    ("8/16/48, stride-2 stem", {**STRIDE_STEM, "filters": [8, 16, 48]}, False),
    ("8/16/48, stride-2 stem, dense 128", {**STRIDE_STEM, "filters": [8, 16, 48], "dense": 128}, False),
    ("8/16/48, stride-2 stem, dense 128, fused Adam (mnist-speedrun)",
     {**STRIDE_STEM, "filters": [8, 16, 48], "dense": 128}, True),
]


def make_step(options: dict, fused: bool, batch: int):
    """A closure running one training step of a fresh convnet with ``options`` on a fixed random batch."""
    model = create_model("convnet", num_classes=10, in_channels=1, image_size=28, **options)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True if fused else None)
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)  # (B, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()  # warm-up: oneDNN creates and caches its primitives
    return step, profile_model(model, (1, 28, 28)).macs


def measure(batch: int, rounds: int, min_run_time: float, candidates=CANDIDATES) -> list[dict]:
    """One row per candidate: MACs per image, best milliseconds per step and the ratio to the first."""
    steps = [make_step(options, fused, batch) for _, options, fused in candidates]
    best = [float("inf")] * len(candidates)
    for _ in range(rounds):
        for i, (step, _) in enumerate(steps):
            timer = Timer("step()", globals={"step": step})
            best[i] = min(best[i], timer.blocked_autorange(min_run_time=min_run_time).median)
    return [{"name": name, "options": options, "fused_adam": fused, "macs_per_image": macs,
             "ms_per_step": seconds * 1e3, "images_per_second": batch / seconds, "time_vs_first": seconds / best[0]}
            for (name, options, fused), (_, macs), seconds in zip(candidates, steps, best)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)  # mnist-speedrun's batch
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--min-run-time", type=float, default=0.7, help="seconds per candidate per round")
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rows = measure(args.batch, args.rounds, args.min_run_time)
    print(f"{'candidate':<66}{'k MACs/img':>11}{'ms/step':>9}{'x time':>8}")
    for r in rows:
        print(f"{r['name']:<66}{r['macs_per_image'] / 1e3:>11.0f}{r['ms_per_step']:>9.2f}{r['time_vs_first']:>8.2f}")
    payload = {"threads": args.threads, "batch": args.batch, "rounds": args.rounds, "candidates": rows}
    path = write_result("mnist-step-layouts", payload, args.out_dir)
    print(f"wrote {path}")
    return {**payload, "json_path": str(path)}


if __name__ == "__main__":
    main()
