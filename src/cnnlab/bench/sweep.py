"""Sweep benchmark: what pruning saves, and what a second worker buys.

On one spec (default ``sweep-mnist-quick``) with the same sampler seed, four sweeps run one after
another: without pruning on 1 worker and on 2 local worker processes, and with the spec's pruner on
1 worker and on 2 (one thread a worker, as the spec sets). Reported: the best objective value and the
best trial's test accuracy of each, the trial-epochs each spent (the cost pruning cuts), and wall
times. The targets: the pruned sweep's best within 0.3 points of the unpruned one's while spending
>= 40 % fewer trial-epochs, and 2 workers finishing in <= 0.6x the wall time of 1. The worker
ratio is judged on the unpruned pair, where both sides do the same trial-epochs; with pruning the
two sides do different work (parallel trials are pruned against fewer finished ones, so fewer are
cut), and that ratio is reported beside it, not hidden. Ratios are
measured within one run, so a busy machine slows both sides alike (mostly: 2 workers need 2 free
cores, which a shared machine may not have — the JSON records the load average before and after).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from cnnlab.bench.results_io import write_result
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports this module for its description, and they load torch or numpy


def _sweep(spec, out: Path, workers: int, progress: Callable[[str], None]) -> dict[str, Any]:
    from cnnlab.tune.sweep import run_sweep

    t0 = time.perf_counter()
    summary = run_sweep(spec, out, workers=workers, quiet=True)
    wall = time.perf_counter() - t0
    progress(f"{out.name}: best {summary['metric']} {summary['best_value']:.4f}, "
             f"{summary['trial_epochs']} trial-epochs, {wall:.0f} s wall")
    return {"sweep_dir": str(out), "workers": workers, "pruner": spec.pruner["name"], "trials": summary["trials"],
            "best_value": summary["best_value"], "best_test_accuracy": summary["test_accuracy"],
            "best_params": summary["best_params"], "trial_epochs": summary["trial_epochs"],
            "train_seconds": summary["train_seconds"], "wall_seconds": round(wall, 3)}


def bench_sweep(spec_name: str = "sweep-mnist-quick", trials: int | None = None, work_dir: str | None = None,
                out_dir: str = "benchmarks/results", workers: bool = True,
                progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the three sweeps; return (and write to ``out_dir``) the comparison."""
    from cnnlab.tune.spec import load_spec, spec_from_dict

    spec = load_spec(spec_name, trials=trials)
    if spec.pruner["name"] == "none":
        raise CnnlabError(f"spec '{spec_name}' has no pruner; the benchmark compares its pruner with none")
    unpruned = spec_from_dict({**spec.source, "base": spec.base_raw, "pruner": {"name": "none"}})
    work = Path(work_dir) if work_dir else Path("runs") / f"bench-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    load_before = os.getloadavg()
    runs = {"unpruned": _sweep(unpruned, work / "unpruned", 1, progress)}
    if workers:
        runs["unpruned_2_workers"] = _sweep(unpruned, work / "unpruned-2workers", 2, progress)
    runs["pruned"] = _sweep(spec, work / "pruned", 1, progress)
    if workers:
        runs["pruned_2_workers"] = _sweep(spec, work / "pruned-2workers", 2, progress)
    u, p = runs["unpruned"], runs["pruned"]
    result: dict[str, Any] = {
        "spec": spec_name, "trials": trials or spec.trials, "sampler": spec.sampler, "pruner": spec.pruner,
        "metric": spec.metric, "runs": runs,
        "pruning": {
            "best_gap_points": round(100 * (u["best_value"] - p["best_value"]), 3),
            "epoch_saving": round(1 - p["trial_epochs"] / u["trial_epochs"], 4),
            "target": "best within 0.3 points of unpruned with >= 40% fewer trial-epochs",
        },
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }
    result["pruning"]["met"] = (result["pruning"]["best_gap_points"] <= 0.3 and result["pruning"]["epoch_saving"] >= 0.4)
    if workers:
        u2, p2 = runs["unpruned_2_workers"], runs["pruned_2_workers"]
        result["workers"] = {
            "wall_ratio_2_vs_1": round(u2["wall_seconds"] / u["wall_seconds"], 4),  # same trial-epochs on both sides
            "wall_ratio_2_vs_1_pruned": round(p2["wall_seconds"] / p["wall_seconds"], 4),
            "trial_epochs_pruned_1_vs_2": [p["trial_epochs"], p2["trial_epochs"]],
            "target": "2 workers <= 0.6x the wall time of 1 (unpruned: equal work)"}
        result["workers"]["met"] = result["workers"]["wall_ratio_2_vs_1"] <= 0.6
    result["json_path"] = str(write_result("sweep", result, out_dir))
    return result


def format_table(result: dict[str, Any]) -> list[str]:
    lines = [f"{'sweep':<18}{'workers':>8}{'best ' + result['metric']:>20}{'best test acc':>15}"
             f"{'trial-epochs':>14}{'wall s':>9}"]
    for name, r in result["runs"].items():
        test = "-" if r["best_test_accuracy"] is None else f"{r['best_test_accuracy']:.4f}"
        lines.append(f"{name:<18}{r['workers']:>8}{r['best_value']:>20.4f}{test:>15}{r['trial_epochs']:>14}"
                     f"{r['wall_seconds']:>9.0f}")
    pr = result["pruning"]
    lines.append(f"pruning: best {pr['best_gap_points']:+.2f} points below unpruned, {100 * pr['epoch_saving']:.0f}% "
                 f"fewer trial-epochs -> {'met' if pr['met'] else 'NOT met'} ({pr['target']})")
    if "workers" in result:
        wr = result["workers"]
        lines.append(f"2 workers: {wr['wall_ratio_2_vs_1']:.2f}x the wall time of 1 -> "
                     f"{'met' if wr['met'] else 'NOT met'} ({wr['target']})")
        ep1, ep2 = wr["trial_epochs_pruned_1_vs_2"]
        lines.append(f"2 workers with pruning: {wr['wall_ratio_2_vs_1_pruned']:.2f}x the wall time of 1 "
                     f"({ep2} trial-epochs against {ep1}: parallel trials are pruned against fewer finished ones)")
    return lines
