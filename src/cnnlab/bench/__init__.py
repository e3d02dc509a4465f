"""Benchmarks behind ``cnnlab bench`` (library code; the sub-commands live in
``cnnlab/commands/bench.py``): ``train`` (seconds to a target accuracy against a
baseline preset) and ``conv`` (convolution algorithms against kernel size).

Every benchmark returns its result as a dict, writes it as JSON under
``benchmarks/results/`` and compares against a baseline measured in the same run.
Progress goes to a ``progress``/``say`` callable (stderr by default).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Callable

Progress = Callable[[str], None]


def to_stderr(message: str) -> None:
    """The default progress sink: one line on stderr, so stdout stays for results."""
    print(message, file=sys.stderr, flush=True)


def median_seconds(fn: Callable[[], Any], budget: float, min_runs: int = 3, max_runs: int = 200) -> float:
    """Median seconds of ``fn`` after one warm-up call: at least ``min_runs`` timed calls, more until
    ``budget`` seconds have passed, never more than ``max_runs``. The caller synchronises a device.

    >>> median_seconds(lambda: None, budget=0.0) < 0.01
    True
    """
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= max_runs:
            break
    return statistics.median(times)
