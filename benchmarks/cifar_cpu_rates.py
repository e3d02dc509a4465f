"""Training images/s of CIFAR-10 candidate networks on this CPU, their MACs per image, the machine's
measured arithmetic rate, and the time to 90% each implies (the cifar10-cpu preset's groundwork).

    PYTHONPATH=src python benchmarks/cifar_cpu_rates.py --threads 1 --out-dir benchmarks/results

For each candidate: one training step (forward, backward, SGD update) on a 32x32x3 batch, the
best of several timed repeats (a shared machine slows some repeats; the best is the machine's
rate). The ceiling is the best float32 GFLOP/s measured at the same thread count, of a large
matmul and of a large 3x3 convolution (oneDNN's convolutions reach the core's vector peak where
torch's matmul library may not: on this project's AMD EPYC the conv ran at 2.4x the matmul). A
network cannot train faster than 6 * MACs (2 FLOPs per MAC, forward + 2x backward) per image at it.
The epochs each needs to reach 90% come from this project's runs on the JPEG copy where one was
made, else they are assumed: each candidate's source string says which.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from cnnlab.bench.results_io import write_result
from cnnlab.models import create_model
from cnnlab.profile.profiler import profile_model

# (name, model, options, epochs to 90% estimate, source of that estimate)
CANDIDATES = [
    ("resnet9", "resnet9", {}, 8, "the cifar10-resnet9 recipe (8 epochs; measured: see cifar-time-to-target)"),
    ("resnet9-w32", "resnet9", {"width": 32}, 12, "half width: assumed 1.5x the epochs"),
    ("airbench94", "airbench", {}, 10,
     "measured: cifar10-cpu (these widths) reached 90.25% after 10 epochs, 89.2% live at epoch 9"),
    ("airbench-w48-192-192", "airbench", {"widths": [48, 192, 192]}, 12,
     "measured: 88.2% after 8 epochs (EMA 0.98/5 + TTA), so more than 8; 12 assumed"),
    ("airbench-w32-128-128", "airbench", {"widths": [32, 128, 128]}, 15,
     "measured: 87.3% after 10 epochs (EMA 0.98/5 + TTA, no identity init), so more than 10; 15 assumed"),
]


def matmul_gflops(threads: int, n: int = 1024, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        best = min(best, (time.perf_counter() - t) / 4)
    return 2 * n ** 3 / best / 1e9


def conv_gflops(threads: int, channels: int = 256, size: int = 32, repeats: int = 4) -> float:
    """Best float32 GFLOP/s of one large 3x3 convolution (channels_last, batch 8) at ``threads``."""
    torch.set_num_threads(threads)
    x = torch.randn(8, channels, size, size).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3).contiguous(memory_format=torch.channels_last)
    F.conv2d(x, w, padding=1)  # warm-up: oneDNN picks and caches its kernel
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        F.conv2d(x, w, padding=1)
        best = min(best, time.perf_counter() - t)
    return 2 * channels * channels * 9 * size * size * 8 / best / 1e9


def peak_gflops(threads: int) -> dict[str, float]:
    """``{"matmul": ..., "conv3x3": ..., "ceiling": the larger}``: the arithmetic rate the bounds use."""
    rates = {"matmul": matmul_gflops(threads), "conv3x3": conv_gflops(threads)}
    return {**rates, "ceiling": max(rates.values())}


def train_rate(model_name: str, options: dict, batch: int, repeats: int, steps: int) -> float:
    model = create_model(model_name, num_classes=10, in_channels=3, image_size=32, **options)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    best = float("inf")
    for rep in range(repeats + 1):  # the first pass warms up (allocator, oneDNN primitives)
        t = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if rep:
            best = min(best, time.perf_counter() - t)
    return batch * steps / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)  # cifar10-cpu's batch
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args()
    torch.manual_seed(0)
    peak = peak_gflops(args.threads)
    gflops = peak["ceiling"]
    torch.set_num_threads(args.threads)
    print(f"float32 with {args.threads} thread(s): matmul {peak['matmul']:.1f} GFLOP/s, 3x3 conv "
          f"{peak['conv3x3']:.1f} GFLOP/s -> ceiling {gflops:.1f}", flush=True)
    rows = []
    for name, model_name, options, epochs, source in CANDIDATES:
        model = create_model(model_name, num_classes=10, in_channels=3, image_size=32, **options)
        macs = profile_model(model, (3, 32, 32)).macs
        rate = train_rate(model_name, options, args.batch, args.repeats, args.steps)
        bound = gflops * 1e9 / (6 * macs)  # images/s if training ran at the matmul rate
        seconds = 50_000 * epochs / rate
        rows.append({"name": name, "model": model_name, "options": options, "macs_per_image": macs,
                     "train_images_per_second": rate, "arithmetic_bound_images_per_second": bound,
                     "fraction_of_bound": rate / bound, "epochs_to_90_estimate": epochs, "epochs_source": source,
                     "estimated_minutes_to_90": seconds / 60,
                     "bound_minutes_to_90": 50_000 * epochs / bound / 60})
        print(f"{name:<22} {macs / 1e6:8.1f} M MACs  {rate:7.1f} img/s  (bound {bound:7.1f}, "
              f"{rate / bound:4.0%})  ~{epochs} epochs -> {seconds / 60:6.1f} min to 90% (estimate)", flush=True)
    path = write_result("cifar-cpu-rates", {"threads": args.threads, "batch": args.batch,
                                            "matmul_gflops": peak["matmul"],
                                            "conv3x3_gflops": peak["conv3x3"], "ceiling_gflops": gflops,
                                            "candidates": rows}, args.out_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
