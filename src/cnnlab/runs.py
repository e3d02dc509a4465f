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
from typing import Any

import torch

from cnnlab.checkpoint import load_checkpoint, load_model_state
from cnnlab.config import Config, check_yaml_size, config_from_dict
from cnnlab.errors import CnnlabError
from cnnlab.filemeta import check_image_meta
from cnnlab.models.pretrained import create_pretrained, lookup, split_name, weights_path
from cnnlab.tasks import RunReader, get_reader, task_class

WEIGHT_FILES = ("final.pt", "best.pt", "last.pt")  # preference order: the tested weights first
CONFIG_FILE = "config.yaml"  # every run has one; runs made before the marker existed have only this


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


def build_model(cfg: Config, input_size: tuple[int, int, int], num_classes: int,
                pretrained: bool = True) -> torch.nn.Module:
    """The model of ``cfg`` for images of ``input_size`` (C, H, W) and ``num_classes`` classes, as its task builds it.

    ``pretrained=False`` skips ``model.weights`` (a run's own checkpoint follows). See
    :meth:`cnnlab.tasks.base.Task.make_model` (classification: the classifier with its transfer
    options; detection: the detector over the backbone's features).
    """
    return task_class(cfg.task)().make_model(cfg, input_size, num_classes, pretrained)


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The raw mapping stored in a run's ``config.yaml`` (one-line errors for a broken file)."""
    import yaml

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CnnlabError(f"{run_dir} is not a cnnlab run directory (no {CONFIG_FILE})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnlabError(f"{path} is not UTF-8 text (byte {exc.start}); it was not written by cnnlab") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise CnnlabError(f"{path} is not valid YAML{at}; restore it or train the run again") from None
    except (RecursionError, ValueError):  # absurd nesting, an integer of more than 4300 digits
        raise CnnlabError(f"{path} is not a config cnnlab wrote; restore it or train the run again") from None
    check_yaml_size(raw, str(path))  # an alias bomb is refused before anything walks it
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CnnlabError(f"{path} must hold a mapping of config keys, got {type(raw).__name__}")
    return raw


def run_reader(run_dir: str | os.PathLike) -> RunReader:
    """The read side of the task ``run_dir`` was trained for (:mod:`cnnlab.tasks.reading`).

    A directory whose config cannot be read gets the classification reader: its own loading then
    names what is wrong in one line (and a pretrained name such as ``efficientnet_lite0.in1k`` is one).
    """
    try:
        task = read_run_config(run_dir).get("task", "classify")
    except CnnlabError:
        task = "classify"
    return get_reader(task if isinstance(task, str) else "classify")


def load_run_config(run_dir: str | os.PathLike) -> Config:
    """The resolved :class:`Config` stored in a run directory."""
    return config_from_dict(read_run_config(run_dir))


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
    pretrained_cfg: dict | None = None  # set for a pretrained name (efficientnet_lite0.in1k): its preprocessing

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


def feature_head_error(run_dir: str | os.PathLike, cfg: Config) -> CnnlabError:
    """The one line for a command that needs images but got a head trained on cached features.

    Such a run's model takes the backbone's pooled feature vectors (``model.features_from=DIR``),
    never images; the same head over the live, frozen backbone is one ``train`` away.
    """
    cache = str(cfg.model.options.get("features_from"))
    backbone = "its backbone"
    try:
        meta = json.loads((Path(cache) / "meta.json").read_text(encoding="utf-8"))
        spec = meta["backbone"]
        backbone = f"backbone {spec['run'] if 'run' in spec else spec['model']}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    where = backbone.split(" ", 1)[1] if backbone != "its backbone" else "BACKBONE_RUN"
    return CnnlabError(
        f"{run_dir} is a head trained on cached features (model.features_from={cache}): it reads the feature "
        f"vectors of {backbone}, not images; to use it on images, train the same head over the frozen backbone: "
        f"cnnlab train PRESET model.weights={where} model.freeze=all")


def is_pretrained_name(target: Any) -> bool:
    """True for ``ARCH.TAG`` naming a zoo architecture where no file or folder of that name exists."""
    return isinstance(target, (str, Path)) and not Path(target).exists() and split_name(str(target)) is not None


def load_pretrained_run(name: str, device: Any = "cpu", task: str | None = "classify"):
    """A :class:`~cnnlab.runs.LoadedRun` for ``ARCH.TAG``: what every command that reads a run needs.

    Its classes are ImageNet's 1,000 names, its normalisation the weights' own, its config the
    architecture with ``model.weights=TAG`` and center-cropped images of the weights' size.
    """
    if task not in (None, "classify"):
        raise CnnlabError(f"{name} is an ImageNet classifier; this command needs a {task} run")
    entry = lookup(name)
    model = create_pretrained(name).to(device)
    cfg = model.pretrained_cfg
    config = config_from_dict({"model": {"name": entry.arch, "options": {"weights": entry.tag}},
                               "data": {"name": "folder", "resize": "center_crop", "image_size": entry.image_size}})
    return LoadedRun(Path(name), config, model, tuple(cfg["input_size"]), list(cfg["classes"]), cfg["mean"],
                     cfg["std"], weights_path(entry), {"pretrained_cfg": {k: v for k, v in cfg.items()
                                                                          if k != "classes"}}, pretrained_cfg=cfg)


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "cpu", weights: str | None = None,
             task: str | None = "classify", feature_head: bool = False) -> LoadedRun:
    """Rebuild a run's model from its checkpoint (read with ``weights_only=True``).

    ``task`` is the kind of run the caller can use (``None``: any); another kind is a one-line error.
    A head trained on cached features (``model.features_from``) takes feature vectors, not images:
    refused (:func:`feature_head_error`) unless the caller says it can use one (``feature_head``).
    A pretrained name (``efficientnet_lite0.in1k``) where no such directory exists stands for a run
    of those weights (:func:`cnnlab.transfer.pretrained.load_pretrained_run`).
    """
    if is_pretrained_name(run_dir):
        return load_pretrained_run(str(run_dir), device, task)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CnnlabError(f"{run_dir} is a file, not a run directory" if run_dir.exists()
                          else f"run directory {run_dir} does not exist")
    cfg = load_run_config(run_dir)
    if task is not None and cfg.task != task:
        kind = get_reader(cfg.task)
        raise CnnlabError(f"{run_dir} is {kind.run_kind} (task: {cfg.task}); this command works on "
                          f"{get_reader(task).runs_name} ({cfg.task} runs: {kind.read_commands})")
    if "features_from" in cfg.model.options and not feature_head:
        raise feature_head_error(run_dir, cfg)
    candidates = [run_dir / weights] if weights else [run_dir / name for name in WEIGHT_FILES]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise CnnlabError(f"{run_dir} has no checkpoint ({', '.join(p.name for p in candidates)}); "
                          "did the run finish its first epoch?")
    state = load_checkpoint(path, map_location=device)
    for key in ("model", "input_size", "classes"):
        if key not in state:
            raise CnnlabError(f"{path} lacks '{key}'; it is not a cnnlab training checkpoint")
    input_size, classes, mean, std = checkpoint_metadata(state, path)
    model = build_model(cfg, input_size, len(classes), pretrained=False)  # the checkpoint fills it

    load_model_state(model, state["model"],
                     f"{path} does not fit model '{cfg.model.name}' as configured in {run_dir / CONFIG_FILE}")
    model.to(device).eval()
    summary_path = run_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    except (UnicodeDecodeError, ValueError):
        summary = {}  # the summary is informative only; the weights and config define the run
    return LoadedRun(run_dir, cfg, model, input_size, classes, mean, std, path,
                     summary if isinstance(summary, dict) else {})


def checkpoint_metadata(state: dict, path: Path) -> tuple[tuple[int, int, int], list[str], list | None, list | None]:
    """The checkpoint's input size (C, H, W), class names and normalisation, checked as user input is
    (:mod:`cnnlab.filemeta`): one line if malformed or out of bounds."""
    return tuple(check_image_meta(state, str(path)))


def load_run_model(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """Just the model (eval mode, CPU) and its input size (C, H, W)."""
    run = load_run(run_dir)
    return run.model, run.input_size


def config_inputs(cfg, source: str | None) -> list[str]:
    """The paths a training reads (config file, data folder, feature cache): its --out may not replace them."""
    return [p for p in (source, getattr(cfg.data, "root", None), cfg.model.options.get("features_from"))
            if isinstance(p, str) and p]
