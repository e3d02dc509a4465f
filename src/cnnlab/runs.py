"""Reading run directories: the config, the summary and the trained model.

>>> run = load_run("runs/mnist-fast")  # doctest: +SKIP
>>> run.model(torch.zeros(1, *run.input_size)).shape  # doctest: +SKIP
torch.Size([1, 10])
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.config import Config
from cnnlab.errors import CnnlabError

WEIGHT_FILES = ("final.pt", "best.pt", "last.pt")  # preference order: the tested weights first


@dataclass
class LoadedRun:
    run_dir: Path
    config: Config
    model: torch.nn.Module  # in eval mode, on the requested device
    input_size: tuple[int, int, int]
    classes: list[str]
    mean: list[float] | None
    std: list[float] | None
    weights_file: Path
    summary: dict

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalize(self, images01: torch.Tensor) -> torch.Tensor:
        """Apply the run's training normalisation to (N, C, H, W) images on the [0, 1] scale."""
        if self.mean is None:
            return images01
        mean = torch.tensor(self.mean, device=images01.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images01.device).view(1, -1, 1, 1)
        return (images01 - mean) / std


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "cpu", weights: str | None = None) -> LoadedRun:
    """Rebuild a run's model from its checkpoint (read with ``weights_only=True``)."""
    from cnnlab.train.checkpoint import load_checkpoint
    from cnnlab.train.run import build_model, load_run_config

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CnnlabError(f"run directory {run_dir} does not exist")
    cfg = load_run_config(run_dir)
    candidates = [run_dir / weights] if weights else [run_dir / name for name in WEIGHT_FILES]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise CnnlabError(f"{run_dir} has no checkpoint ({', '.join(p.name for p in candidates)}); "
                          "did the run finish its first epoch?")
    state = load_checkpoint(path, map_location=device)
    for key in ("model", "input_size", "classes"):
        if key not in state:
            raise CnnlabError(f"{path} lacks '{key}'; it is not a cnnlab training checkpoint")
    input_size = tuple(int(v) for v in state["input_size"])
    model = build_model(cfg, input_size, len(state["classes"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CnnlabError(f"{path} does not fit model '{cfg.model.name}' as configured in "
                          f"{run_dir / 'config.yaml'}: {str(exc).splitlines()[0]}") from None
    model.to(device).eval()
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return LoadedRun(run_dir, cfg, model, input_size, list(state["classes"]), state.get("mean"), state.get("std"),
                     path, summary)


def load_run_model(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """Just the model (eval mode, CPU) and its input size (C, H, W)."""
    run = load_run(run_dir)
    return run.model, run.input_size
