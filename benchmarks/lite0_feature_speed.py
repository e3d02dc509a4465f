"""How fast `cnnlab features` runs EfficientNet-Lite0: layout x folded batch norm x batch size.

The same 256 photos-sized random images (160 px) through ``forward_features`` of four versions of
the ImageNet Lite0 -- NCHW (the old features path), channels-last, batch norm folded (NCHW and
channels-last: :func:`cnnlab.models.inference.inference_copy`) -- at batches 256, 64, 16 and 4,
in interleaved rounds (the first a warm-up) so a busy CPU slows all alike; medians compared.

    python benchmarks/lite0_feature_speed.py          # needs cnnlab[pretrained]; about 2 min on 2 cores

Prints a table and writes ``benchmarks/results/lite0-feature-speed-*.json``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from cnnlab.bench.results_io import write_result
from cnnlab.models import create_model
from cnnlab.models.inference import fold_batchnorm, inference_copy


def versions() -> dict[str, tuple[torch.nn.Module, bool]]:
    """name -> (model, whether it takes channels-last input)."""
    plain = create_model("efficientnet_lite0.in1k").eval()
    folded_nchw = copy.deepcopy(plain)
    fold_batchnorm(folded_nchw)
    return {"nchw": (plain, False), "channels_last": (copy.deepcopy(plain).to(memory_format=torch.channels_last), True),
            "folded_nchw": (folded_nchw, False), "folded_channels_last": (inference_copy(plain), True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batches", default="256,64,16,4")
    ap.add_argument("--rounds", type=int, default=2, help="timed rounds after the warm-up")
    ap.add_argument("--out-dir", default="benchmarks/results")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    nets = versions()
    x = torch.rand(a.images, 3, 160, 160)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        diff = (nets["folded_channels_last"][0].forward_features(x_cl[:8])
                - nets["nchw"][0].forward_features(x[:8])).abs().max().item()
    rows = []
    with torch.no_grad():
        for batch in [int(b) for b in a.batches.split(",")]:
            times: dict[str, list[float]] = {name: [] for name in nets}
            for r in range(a.rounds + 1):
                for name, (net, cl) in nets.items():
                    inp = x_cl if cl else x
                    t0 = time.perf_counter()
                    for s in range(0, a.images, batch):
                        net.forward_features(inp[s:s + batch])
                    if r:
                        times[name].append(time.perf_counter() - t0)
            rate = {name: round(a.images / statistics.median(t), 1) for name, t in times.items()}
            rows.append({"batch": batch, "images_per_second": rate})
    base = next((r["images_per_second"]["nchw"] for r in rows if r["batch"] == 256), None)  # the old path
    print(f"| batch | {' | '.join(nets)} | best vs NCHW at 256 |")
    print("|---:|" + "---:|" * (len(nets) + 1))
    for row in rows:
        r = row["images_per_second"]
        row["folded_channels_last_vs_nchw_256"] = round(r["folded_channels_last"] / base, 2) if base else None
        print(f"| {row['batch']} | " + " | ".join(f"{r[n]:.1f}" for n in nets)
              + f" | {row['folded_channels_last_vs_nchw_256'] or '-'}x |")
    print(f"max |folded - plain| on 8 images' features: {diff:.1e}")
    path = write_result("lite0-feature-speed", {"size": 160, "images": a.images, "threads": a.threads,
                                                "rounds": a.rounds, "max_abs_diff": diff, "rows": rows}, a.out_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
