"""Writing benchmark results: one JSON file per run under ``benchmarks/results/``."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from cnnlab.fileio import write_json_atomic


def machine_description() -> dict[str, Any]:
    """What the numbers were measured on (recorded with every result)."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_result(name: str, payload: dict[str, Any], out_dir: str | os.PathLike = "benchmarks/results") -> Path:
    """Write ``payload`` (plus machine info and a timestamp) to ``<out_dir>/<name>-<stamp>.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out / f"{name}-{stamp}.json"
    record = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine_description(), **payload}
    write_json_atomic(path, record)
    return path
