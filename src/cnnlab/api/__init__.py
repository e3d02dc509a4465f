"""The Python API: what the ``cnnlab`` commands do, as functions that return objects.

Reached from the top level (``import cnnlab``; ``cnnlab.train``, ``cnnlab.load``, ...), each a thin
caller of the same library code as its command, so a notebook and the CLI write the same run
directories and report the same numbers.

Overrides are keyword arguments whose double underscore stands for the dot of a config key
(``train__epochs=3`` is ``train.epochs=3``), or one ``overrides={"train.epochs": 3}`` dict::

    >>> import cnnlab                                                          # doctest: +SKIP
    >>> run = cnnlab.train("mnist-fast", out="runs/nb", train__epochs=1)       # doctest: +SKIP
    >>> run.predict("digit.png")                                               # doctest: +SKIP
    Predictions(1 image)
      digit.png: 7 0.999, 2 0.000, 1 0.000

An interrupt (Ctrl-C, or the notebook's stop button) finishes the step, saves a resumable
checkpoint and returns the run with ``summary["status"] == "interrupted"``; continue it with
``cnnlab.train(run.path, resume=True)``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from cnnlab.api.results import TableResult
from cnnlab.api.run import OnnxRun, Run
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `import cnnlab` reaches this package, and it must not load torch

__all__ = ["train", "load", "sweep", "ablate", "cv", "ensemble", "Run", "OnnxRun", "dotted_overrides"]


def dotted_overrides(overrides: dict | None, keywords: dict[str, Any]) -> dict[str, Any]:
    """``{"train.epochs": 3}`` and ``train__epochs=3`` merged into one dict of dotted keys.

    >>> dotted_overrides({"optim.lr": 0.1}, {"train__epochs": 3})
    {'optim.lr': 0.1, 'train.epochs': 3}
    >>> dotted_overrides(None, {"epochs": 3})
    Traceback (most recent call last):
    ...
    cnnlab.errors.CnnlabError: override epochs=3 names no config section; write section__key=value, e.g. train__epochs=3
    """
    if overrides is not None and not isinstance(overrides, dict):
        raise CnnlabError(f"overrides must be a dict of dotted keys, e.g. {{'train.epochs': 3}}; got "
                          f"{type(overrides).__name__}")
    merged = dict(overrides or {})
    for key, value in keywords.items():
        if "__" not in key:
            raise CnnlabError(f"override {key}={value!r} names no config section; write section__key=value, "
                              "e.g. train__epochs=3")
        dotted = key.replace("__", ".")
        if dotted in merged:
            raise CnnlabError(f"{dotted} is given twice (as {key}= and in overrides); give it once")
        merged[dotted] = value
    for key in merged:
        if not isinstance(key, str) or not key:
            raise CnnlabError(f"override keys must be dotted names such as 'train.epochs', got {key!r}")
    return merged


def _config(source: Any, overrides: dict[str, Any]):
    """A preset name, a YAML file, a raw mapping or a ``Config`` -> the resolved config with ``overrides``."""
    from cnnlab.config import Config, config_to_dict, config_with_overrides, load_config

    if isinstance(source, Config):
        return config_with_overrides(config_to_dict(source), overrides)
    if isinstance(source, dict):
        return config_with_overrides(source, overrides)
    if isinstance(source, (str, os.PathLike)):
        return load_config(os.fspath(source), overrides)
    raise CnnlabError(f"give a preset name, a YAML file, a dict or a Config; got {type(source).__name__}")


def train(source: Any, out: str | os.PathLike | None = None, *, overrides: dict | None = None,
          overwrite: bool = False, resume: bool = False, quiet: bool = False, data_dir: str | None = None,
          **keywords: Any) -> Run:
    """Train a preset, YAML file, mapping or ``Config`` into ``out`` (default ``runs/NAME-TIME``); return the Run.

    ``resume=True`` continues the run directory ``source`` (its stored config with any overrides).
    A run that stops on a non-finite loss is returned too: check ``run.summary["status"]``.
    """
    from cnnlab.runs import read_run_config
    from cnnlab.train.run import train as train_config

    changes = dotted_overrides(overrides, keywords)
    if resume:
        if out is not None:
            raise CnnlabError(f"resume=True continues {source} in place; drop out={out!r}")
        if overwrite:
            raise CnnlabError("resume=True continues a run and overwrite=True replaces one; choose one")
        if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
            raise CnnlabError(f"resume=True needs the run directory to continue, got {source!r}")
        from cnnlab.config import config_with_overrides

        cfg, out = config_with_overrides(read_run_config(source), changes), source
    else:
        cfg = _config(source, changes)
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    summary = train_config(cfg, out, overwrite=overwrite, resume=resume, quiet=quiet)
    return Run(summary["run_dir"])


def load(source: str | os.PathLike) -> Run | OnnxRun:
    """A run directory (``Run``) or an exported ``MODEL.onnx`` (``OnnxRun``, ONNX Runtime only)."""
    if not isinstance(source, (str, os.PathLike)):
        raise CnnlabError(f"cnnlab.load takes a run directory or a .onnx file path, got {type(source).__name__}")
    path = Path(source)
    if path.suffix.lower() == ".onnx":
        return OnnxRun(path)
    return Run(path)


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sweep(spec: str, out: str | os.PathLike | None = None, *, trials: int | None = None, workers: int = 1,
          overrides: dict | None = None, storage: str | None = None, overwrite: bool = False, resume: bool = False,
          quiet: bool = False, **keywords: Any) -> TableResult:
    """Run a sweep spec (a shipped name such as ``sweep-mnist-quick`` or a YAML file) as ``cnnlab sweep`` does.

    The result's ``table()`` is ``trials.csv``; its summary is ``summary.json`` (best trial, importances).
    """
    from cnnlab.tune.spec import load_spec
    from cnnlab.tune.sweep import run_sweep

    changes = [f"{k}={_yaml(v)}" for k, v in dotted_overrides(overrides, keywords).items()]
    summary = run_sweep(load_spec(spec, trials=trials, overrides=changes), out, storage_url=storage,
                        workers=workers, overwrite=overwrite, resume=resume, quiet=quiet)
    where = Path(summary["sweep_dir"])
    return TableResult("sweep", summary, _read_csv(where / "trials.csv"))


def _yaml(value: Any) -> str:
    """A Python value as the YAML text of a ``key=value`` override (JSON is YAML)."""
    import json

    return json.dumps(value)


def ablate(source: Any, out: str | os.PathLike, *, techniques: list[str] | None = None, seeds: int = 1,
           overrides: dict | None = None, overwrite: bool = False, quiet: bool = False, **keywords: Any) -> TableResult:
    """Leave-one-out and add-one ablation of a config's techniques, as ``cnnlab ablate`` does."""
    from cnnlab.tune.ablation import run_ablation

    cfg = _config(source, dotted_overrides(overrides, keywords))
    record = run_ablation(cfg, out, techniques=techniques, seeds=seeds, overwrite=overwrite, quiet=quiet,
                          source=str(source) if isinstance(source, (str, os.PathLike)) else "")
    rows = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in record["variants"]]
    return TableResult("ablation", record, rows, Path(out) / "ablation.png")


def cv(source: Any, out: str | os.PathLike, *, folds: int = 5, overrides: dict | None = None,
       overwrite: bool = False, quiet: bool = False, **keywords: Any) -> TableResult:
    """K-fold cross-validation of a config on its training split, as ``cnnlab cv`` does."""
    from cnnlab.tune.cv import run_cv

    cfg = _config(source, dotted_overrides(overrides, keywords))
    record = run_cv(cfg, out, folds, overwrite=overwrite, quiet=quiet,
                    source=str(source) if isinstance(source, (str, os.PathLike)) else "")
    return TableResult("cv", record, list(record["per_fold"]))


def ensemble(runs: list[str | os.PathLike | Run], method: str = "mean", *, data_dir: str | None = None) -> TableResult:
    """Test accuracy of an ensemble of trained runs beside each member's, as ``cnnlab ensemble`` does."""
    from cnnlab.tune.ensemble import ensemble_runs

    if not isinstance(runs, (list, tuple)) or len(runs) < 2:
        raise CnnlabError("an ensemble needs a list of at least two runs")
    dirs = [str(r.path) if isinstance(r, Run) else os.fspath(r) for r in runs]
    record = ensemble_runs(dirs, method, data_dir=data_dir)
    return TableResult("ensemble", record, list(record["members"]))
