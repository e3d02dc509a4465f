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

from cnnlab.config import Config, config_from_dict
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, model_arguments
from cnnlab.models.shapes import feature_shape

WEIGHT_FILES = ("final.pt", "best.pt", "last.pt")  # preference order: the tested weights first
RUN_MARKER = "config.yaml"  # a folder holding this file is a cnnlab run directory


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CnnlabError(f"train.device='{name}' is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CnnlabError("train.device=cuda but no CUDA GPU is visible; use train.device=cpu")
    return device


def build_model(cfg: Config, input_size: tuple[int, int, int], num_classes: int) -> torch.nn.Module:
    """The configured model for images of ``input_size`` (C, H, W) and ``num_classes`` classes."""
    options = dict(cfg.model.options)
    accepted = model_arguments(cfg.model.name)
    c, h, w = input_size
    for key, value in (("in_channels", c), ("num_classes", num_classes)):
        if key in options and options[key] != value:
            raise CnnlabError(f"model.{key}={options[key]} but the data has {value}; remove model.{key}")
        options[key] = value
    if "image_size" in accepted:
        options.setdefault("image_size", h)
    model = create_model(cfg.model.name, **options)
    feature_shape(model, input_size, cfg.model.name)  # a size the model cannot take fails here, clearly
    return model


def load_run_config(run_dir: str | os.PathLike) -> Config:
    """The resolved :class:`Config` stored in a run directory."""
    from cnnlab.config import load_yaml, read_text_file

    path = Path(run_dir) / RUN_MARKER
    if not path.is_file():
        raise CnnlabError(f"{run_dir} is not a cnnlab run directory (no {RUN_MARKER})")
    return config_from_dict(load_yaml(read_text_file(path, "run config"), str(path)) or {})


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

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CnnlabError(f"{run_dir} is a file, not a run directory" if run_dir.exists()
                          else f"run directory {run_dir} does not exist")
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
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    except ValueError:  # broken JSON or not UTF-8: the summary is informational, the model still loads
        summary = {}
    return LoadedRun(run_dir, cfg, model, input_size, list(state["classes"]), state.get("mean"), state.get("std"),
                     path, summary)


def load_run_model(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """Just the model (eval mode, CPU) and its input size (C, H, W)."""
    run = load_run(run_dir)
    return run.model, run.input_size
