"""When does each convolution algorithm win? (``cnnlab bench conv``)

Times the forward pass (and forward + backward) of torch ``F.conv2d``,
cnnlab's ``FFTConv2d`` and the scratch NumPy algorithms (``direct``,
``im2col``, ``fft``, ``winograd``) for kernel sizes 3..31 on three shapes,
reports per shape the smallest kernel from which ``FFTConv2d`` beats
``F.conv2d``, and compares depthwise-separable with standard convolution
(multiplications counted and time measured). Times are the best of
``--repeats`` runs after one warm-up, all measured in the same run with the
same thread count, so ratios between methods are meaningful even on a busy
machine; absolute times are not.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from cnnlab.bench import Progress, to_stderr
from cnnlab.bench.results_io import write_result
from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_path

# why the cnnlab imports inside functions: `cnnlab --help` imports this module for its description, and they load torch or numpy

SHAPES = {  # name: (batch N, in C, out O, H = W)
    "mnist": (64, 1, 32, 28),
    "cifar": (8, 64, 64, 32),
    "large": (1, 8, 8, 256),
}
QUICK_SHAPES = {"mnist": (4, 1, 4, 28), "cifar": (1, 8, 8, 16), "large": (1, 2, 2, 48)}
KERNELS = (3, 5, 7, 9, 11, 15, 19, 23, 27, 31)
METHODS = ("F.conv2d", "FFTConv2d", "direct", "im2col", "fft", "winograd")
SEPARABLE_PAIRS = ((64, 3), (128, 3), (256, 3), (256, 5), (512, 5))  # (output channels N, kernel f)


@dataclass
class ConvBenchSettings:
    """What ``cnnlab bench conv`` measures and where it writes (defaults = the full benchmark)."""

    kernels: Sequence[int] = KERNELS  # odd sizes: padding k // 2 keeps the image size
    shapes: Sequence[str] = tuple(SHAPES)  # names in SHAPES (QUICK_SHAPES when quick)
    repeats: int = 3  # timed runs per measurement; the best is kept
    threads: int = 1  # torch and BLAS threads for every method
    backward: bool = True  # also time forward + backward
    direct_limit: float = 4e8  # skip scratch direct above this many multiply-adds (it has no BLAS)
    backward_limit: float = 5.0  # skip forward + backward of a method whose forward took longer (seconds)
    im2col_limit_mb: float = 256  # skip scratch im2col when its column matrix is larger
    quick: bool = False  # tiny shapes, kernels <= 5, one repeat (a smoke test)
    out_dir: str = "benchmarks/results"
    plot: Optional[str] = "benchmarks/conv_plot.png"  # None or "" for no plot

    def checked(self) -> "ConvBenchSettings":
        """These settings with the quick mode applied; a bad value raises CnnlabError."""
        kernels = list(self.kernels)
        if not kernels or any(not isinstance(k, int) or k < 1 for k in kernels):
            raise CnnlabError(f"--kernels must be positive integers separated by commas, got {kernels}")
        if any(k % 2 == 0 for k in kernels):
            raise CnnlabError(f"--kernels must be odd (padding k//2 keeps the size), got {kernels}")
        if self.repeats < 1 or self.threads < 1:
            raise CnnlabError(f"--repeats and --threads must be >= 1, got {self.repeats} and {self.threads}")
        table = QUICK_SHAPES if self.quick else SHAPES
        unknown = [s for s in self.shapes if s not in table]
        if unknown or not self.shapes:
            raise CnnlabError(f"unknown --shapes {unknown}; choose from {', '.join(table)}")
        if self.quick:
            return dataclasses.replace(self, kernels=[k for k in kernels if k <= 5] or [3, 5], repeats=1)
        return dataclasses.replace(self, kernels=kernels)

    def shape_table(self) -> dict[str, tuple[int, int, int, int]]:
        """The chosen shapes: name -> (batch N, in C, out O, H = W)."""
        table = QUICK_SHAPES if self.quick else SHAPES
        return {s: table[s] for s in self.shapes}


def best_time(fn: Callable[[], object], repeats: int, single_above: float = 2.0) -> float:
    """Seconds of the fastest of ``repeats`` calls after one warm-up call.

    A call slower than ``single_above`` seconds is measured once (its warm-up
    is the measurement): repeating it would cost minutes and change little.
    """
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if first > single_above:
        return first
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _skip_reason(method: str, n: int, c: int, o: int, size: int, k: int, settings: ConvBenchSettings) -> str | None:
    macs = n * c * o * size * size * k * k
    if method == "winograd" and k != 3:
        return "3x3 only"
    if method == "direct" and macs > settings.direct_limit:
        return f"{macs:.1e} MACs > --direct-limit"
    if method == "im2col" and n * c * k * k * size * size * 4 / 2**20 > settings.im2col_limit_mb:
        return "columns > --im2col-limit-mb"
    return None


def _callables(method: str, x, w, b, k: int):
    """(forward, forward+backward) closures for one method on NumPy arrays x, w, b."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    pad = k // 2
    if method in ("F.conv2d", "FFTConv2d"):
        from cnnlab.nn import fft_conv2d

        xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
        if method == "F.conv2d":
            conv = lambda xx, ww, bb: F.conv2d(xx, ww, bb, padding=pad)  # noqa: E731
        else:
            conv = lambda xx, ww, bb: fft_conv2d(xx, ww, bb, padding=((pad, pad), (pad, pad)))  # noqa: E731
        xg, wg, bg = (t.clone().requires_grad_(True) for t in (xt, wt, bt))

        def forward():
            with torch.no_grad():
                return conv(xt, wt, bt)

        def both():
            conv(xg, wg, bg).sum().backward()

        return forward, both
    from cnnlab.scratch.algorithms import get_algorithm

    algo = get_algorithm(method)
    dy = np.ones((x.shape[0], w.shape[0], x.shape[2], x.shape[3]), dtype=x.dtype)

    def both():
        _, ctx = algo.forward(x, w, b, 1, pad)
        algo.backward(dy, ctx)

    return (lambda: algo.forward(x, w, b, 1, pad)), both


def measure_kernels(settings: ConvBenchSettings, shapes: dict, kernels: list[int], say: Progress) -> list[dict]:
    """One row per (shape, kernel): forward (and forward + backward) milliseconds of every method."""
    import numpy as np

    rows = []
    rng = np.random.default_rng(0)
    for shape, (n, c, o, size) in shapes.items():
        for k in kernels:
            x = rng.standard_normal((n, c, size, size)).astype(np.float32)
            w = (rng.standard_normal((o, c, k, k)) / k).astype(np.float32)
            b = rng.standard_normal(o).astype(np.float32)
            row = {"shape": shape, "kernel": k, "N": n, "C": c, "O": o, "size": size,
                   "macs": n * c * o * size * size * k * k, "forward_ms": {}, "forward_backward_ms": {}, "skipped": {}}
            for method in METHODS:
                reason = _skip_reason(method, n, c, o, size, k, settings)
                if reason:
                    row["skipped"][method] = reason
                    continue
                forward, both = _callables(method, x, w, b, k)
                row["forward_ms"][method] = round(1e3 * best_time(forward, settings.repeats), 3)
                if row["forward_ms"][method] > 1e3 * settings.backward_limit and settings.backward:
                    row["skipped"][f"{method} forward+backward"] = "forward > --backward-limit"
                elif settings.backward:
                    row["forward_backward_ms"][method] = round(1e3 * best_time(both, settings.repeats), 3)
            say(_format_row(row))
            rows.append(row)
    return rows


def crossovers(rows: list[dict], method: str = "FFTConv2d", baseline: str = "F.conv2d") -> dict:
    """Per shape: the smallest kernel from which ``method``'s forward beats ``baseline`` at every larger kernel."""
    out = {}
    for shape in dict.fromkeys(r["shape"] for r in rows):
        timed = [r for r in rows if r["shape"] == shape and method in r["forward_ms"] and baseline in r["forward_ms"]]
        wins = [r["forward_ms"][method] < r["forward_ms"][baseline] for r in timed]
        crossover = None
        for i in range(len(timed)):
            if all(wins[i:]):
                crossover = timed[i]["kernel"]
                break
        last = timed[-1] if timed else None
        out[shape] = {
            "crossover_kernel": crossover,
            "largest_kernel": last["kernel"] if last else None,
            "speedup_at_largest": round(last["forward_ms"][baseline] / last["forward_ms"][method], 2) if last else None,
        }
    return out


def ratio_checks(rows: list[dict]) -> dict:
    """Forward-time ratios at 3x3 per shape: im2col / F.conv2d and winograd / direct (lower is faster)."""
    out = {}
    for r in rows:
        if r["kernel"] != 3:
            continue
        t = r["forward_ms"]
        if "im2col" in t and "F.conv2d" in t:
            out[f"{r['shape']} im2col/F.conv2d"] = round(t["im2col"] / t["F.conv2d"], 2)
        if "winograd" in t and "direct" in t:
            out[f"{r['shape']} winograd/direct"] = round(t["winograd"] / t["direct"], 2)
    return out


def measure_separable(settings: ConvBenchSettings, say: Progress) -> list[dict]:
    """Depthwise-separable vs standard convolution: multiplications (theory) and forward time."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from cnnlab.scratch.conv import separable_cost

    batch, c, size = (1, 8, 16) if settings.quick else (2, 32, 32)
    pairs = ((16, 3), (64, 5)) if settings.quick else SEPARABLE_PAIRS
    rows = []
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c, size, size, generator=gen)
    for out_ch, f in pairs:
        w = torch.randn(out_ch, c, f, f, generator=gen)
        dw = torch.randn(c, 1, f, f, generator=gen)
        pw = torch.randn(out_ch, c, 1, 1, generator=gen)
        with torch.no_grad():
            standard = best_time(lambda: F.conv2d(x, w, padding=f // 2), settings.repeats)
            separable = best_time(lambda: F.conv2d(F.conv2d(x, dw, padding=f // 2, groups=c), pw),
                                  settings.repeats)
        cost = separable_cost(out_ch, f, c, size, size)
        row = {
            "N": out_ch, "f": f, "C": c, "size": size, "batch": batch,
            "theory_ratio": round(cost["ratio"], 4), "theory_formula": f"1/{out_ch} + 1/{f * f}",
            "standard_ms": round(1e3 * standard, 3), "separable_ms": round(1e3 * separable, 3),
            "measured_ratio": round(separable / standard, 4),
        }
        say(f"separable N={out_ch:4d} f={f}: multiplications {100 * row['theory_ratio']:.1f}% of standard, "
            f"time {100 * row['measured_ratio']:.1f}% ({row['separable_ms']:.2f} vs {row['standard_ms']:.2f} ms)")
        rows.append(row)
    _ = np  # numpy only needed by the scratch side
    return rows


def _format_row(row: dict) -> str:
    def cell(table, method):
        if method in row["skipped"] and table is row["forward_ms"]:
            return "skip".rjust(9)
        value = table.get(method)
        return f"{value:9.2f}" if value is not None else "-".rjust(9)

    fwd = " ".join(cell(row["forward_ms"], m) for m in METHODS)
    text = f"{row['shape']:6s} k={row['kernel']:2d} fwd  {fwd}"
    if row["forward_backward_ms"]:
        text += "\n" + " " * 10 + " f+b  " + " ".join(cell(row["forward_backward_ms"], m) for m in METHODS)
    return text


def header() -> str:
    return "shape  kernel    " + " ".join(m.rjust(9) for m in METHODS) + "   (ms, best of repeats)"


def draw_plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    fig, axes = plt.subplots(1, len(shapes), figsize=(5 * len(shapes), 4), squeeze=False)
    for ax, shape in zip(axes[0], shapes):
        mine = [r for r in rows if r["shape"] == shape]
        for method in METHODS:
            points = [(r["kernel"], r["forward_ms"][method]) for r in mine if method in r["forward_ms"]]
            if points:
                ax.plot(*zip(*points), marker="o", label=method)
        n, c, o, size = mine[0]["N"], mine[0]["C"], mine[0]["O"], mine[0]["size"]
        ax.set_title(f"{shape}: N={n} C={c}->{o} {size}x{size}")
        ax.set_xlabel("kernel size")
        ax.set_ylabel("forward time (ms)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def run_conv_bench(settings: ConvBenchSettings | None = None, say: Progress = to_stderr) -> dict[str, Any]:
    """Measure, print the table and conclusions through ``say``, write the JSON (and the plot).

    Returns the payload written, plus ``result_path`` (and ``plot`` when one was drawn). The
    caller's torch thread count is restored afterwards.
    """
    settings = (settings or ConvBenchSettings()).checked()
    shapes = settings.shape_table()

    import torch

    from cnnlab.scratch.threads import blas_threads

    before = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        with blas_threads(settings.threads):
            say(header())
            rows = measure_kernels(settings, shapes, list(settings.kernels), say)
            separable = measure_separable(settings, say)
            return _report(settings, shapes, rows, separable, say)
    finally:
        torch.set_num_threads(before)


def _report(settings: ConvBenchSettings, shapes, rows, separable, say: Progress) -> dict[str, Any]:
    """Print the conclusions, write the JSON (machine info records the threads used) and the plot."""
    cross = crossovers(rows)
    checks = ratio_checks(rows)
    for name, value in checks.items():
        say(f"{name}: {value}")
    for shape, info in cross.items():
        say(f"{shape}: FFTConv2d beats F.conv2d from kernel {info['crossover_kernel']} "
            f"({info['speedup_at_largest']}x at kernel {info['largest_kernel']})")
    skipped = sorted({f"{m} ({why})" for r in rows for m, why in r["skipped"].items()})
    if skipped:
        say("skipped where too slow or not applicable: " + "; ".join(skipped))
    from cnnlab.scratch.algorithms.winograd import multiplications
    from cnnlab.scratch.geometry import conv_geometry

    n, c, o, size = shapes.get("cifar", next(iter(shapes.values())))
    counts = multiplications(conv_geometry((n, c, size, size), (o, c, 3, 3), padding=1), m=2)
    payload = {
        "quick": settings.quick,
        "threads": settings.threads,
        "repeats": settings.repeats,
        "timing": "best of repeats after one warm-up, milliseconds",
        "padding": "k//2 (same size)",
        "shapes": {s: dict(zip(("N", "C", "O", "size"), v)) for s, v in shapes.items()},
        "rows": rows,
        "fft_crossover": cross,
        "ratios_at_3x3": checks,
        "scratch_fft_crossover": crossovers(rows, "fft"),
        "winograd_multiplications": {**counts, "ratio": round(counts["direct"] / counts["winograd"], 3)},
        "separable": separable,
        "skipped": skipped,
    }
    path = write_result("conv", payload, settings.out_dir)
    payload["result_path"] = str(path)
    if settings.plot:
        draw_plot(rows, settings.plot)
        payload["plot"] = settings.plot
    say(f"wrote {path}" + (f" and {settings.plot}" if settings.plot else ""))
    return payload
