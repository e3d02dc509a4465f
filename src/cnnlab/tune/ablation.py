"""Ablation: how much each technique buys, in the task's headline test metric and in training time.

The metric is the base config's task's (:attr:`cnnlab.tasks.base.Task.headline`): test accuracy
for a classifier, test mAP@0.5 (``test_map50``) for a detector; the record's ``metric`` names it.

Each technique knows how to switch itself on and off in a config::

    normalization    data.normalize                     true | false
    augmentation     data.augment.*                     the recipe's (or a default) | all off
    residual         model.residual                     true | false   (models that have the option)
    batchnorm        model.norm                         the recipe's (or batchnorm) | none
    onecycle         schedule.name                      onecycle | constant
    weight_decay     optim.weight_decay                 the recipe's (or 5e-4) | 0
    clipping         train.clip_norm / clip_value       the recipe's (or clip_norm 1.0) | off
    adam             optim.name                         the recipe's Adam/AdamW (or adam at lr/10) | SGD Nesterov 0.9 at 10x lr
    dropout          model.dropout                      the recipe's (or 0.2) | 0
    label_smoothing  train.label_smoothing              the recipe's (or 0.1) | 0

The *full* recipe is the given config with every applicable technique on (the config's own
setting where it uses the technique, the default above where it does not); the *plain*
baseline has every one off. Variants: full, plain, full minus each technique
(leave-one-out) and plain plus each technique (add-one), each trained with ``--seeds``
seeds (``train.seed`` = the config's seed + i). A technique the model cannot switch (no
``residual`` option, no ``norm`` option) is reported as not applicable with the reason. A
technique whose switch sets a key the task does not use (``config/scope.py``: label smoothing
for a detector) is left out of the default set with a one-line notice, and refused in one line
when ``--techniques`` names it. A detector's default augmentation is box-aware (scale and
translate jitter, plus horizontal flips for photographs).

>>> from cnnlab.config import load_config
>>> t = TECHNIQUES["weight_decay"]
>>> t.on(load_config("mnist-fast")), t.off(load_config("mnist-fast"))
({'optim.weight_decay': 0.0005}, {'optim.weight_decay': 0.0})
>>> TECHNIQUES["residual"].on(load_config("mnist-fast"))
"model 'convnet' has no residual connections to switch (no 'residual' option)"
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cnnlab.config import Config, config_to_dict, config_with_overrides
from cnnlab.config.scope import check_scope, out_of_scope, refusal
from cnnlab.errors import CnnlabError, check_int_range, did_you_mean
from cnnlab.fileio import atomic_path, write_json_atomic
from cnnlab.models.registry import model_arguments
from cnnlab.rundir import check_out_dir, open_run_dir
from cnnlab.runs import build_model, config_inputs
from cnnlab.tasks import get_task, task_class
from cnnlab.train.run import train


def _model_has(cfg: Config, option: str) -> bool:
    return option in model_arguments(cfg.model.name)


def _augment_is_on(cfg: Config) -> bool:
    a = cfg.data.augment
    settings = ("crop_mode", "erase_size", "min_box", "flip_mode", "resized_crop_ratio")  # settings, not ops
    return any(v for k, v in vars(a).items() if k not in settings)


def _default_augment(cfg: Config) -> dict:
    """A mild default for recipes without augmentation: digits are not flipped; photos are.

    A detector's is box-aware (the boxes move with the pixels): scale and translate jitter.
    """
    if cfg.task == "detect":
        flip = {} if cfg.data.name == "mnist-scenes" else {"data.augment.hflip": 0.5}
        return {"data.augment.scale": 0.1, "data.augment.translate": 0.05, **flip}
    if cfg.data.name in ("mnist",):
        return {"data.augment.crop_padding": 2, "data.augment.rotate": 10.0}
    return {"data.augment.crop_padding": 4 if (cfg.data.image_size or 32) >= 32 else 2,
            "data.augment.crop_mode": "reflect", "data.augment.hflip": 0.5}


def _augment_on(cfg: Config) -> dict:
    if _augment_is_on(cfg):
        return {f"data.augment.{k}": v for k, v in vars(cfg.data.augment).items()}
    return _default_augment(cfg)


def _augment_off(cfg: Config) -> dict:
    return {"data.augment": {}}


def _norm_on(cfg: Config) -> dict | str:
    if not _model_has(cfg, "norm"):
        return f"model '{cfg.model.name}' has no normalization layers to switch (no 'norm' option)"
    norm = cfg.model.options.get("norm", "batchnorm")
    return {"model.norm": norm if norm not in (None, "none") else "batchnorm"}


def _residual(value: bool) -> Callable[[Config], dict | str]:
    def switch(cfg: Config) -> dict | str:
        if not _model_has(cfg, "residual"):
            return f"model '{cfg.model.name}' has no residual connections to switch (no 'residual' option)"
        return {"model.residual": value}
    return switch


def _option(option: str, default: Any, off_value: Any) -> tuple[Callable, Callable]:
    """(on, off) for a model option such as dropout: the recipe's non-zero value, else ``default``."""
    def on(cfg: Config) -> dict | str:
        if not _model_has(cfg, option):
            return f"model '{cfg.model.name}' has no '{option}' option"
        value = cfg.model.options.get(option)
        return {f"model.{option}": value if value else default}

    def off(cfg: Config) -> dict | str:
        if not _model_has(cfg, option):
            return f"model '{cfg.model.name}' has no '{option}' option"
        return {f"model.{option}": off_value}
    return on, off


def _adam_on(cfg: Config) -> dict:
    # momentum/nesterov are restored too, so "plain + adam" differs from plain in the optimizer alone
    keep = {"optim.momentum": cfg.optim.momentum, "optim.nesterov": cfg.optim.nesterov}
    if cfg.optim.name in ("adam", "adamw"):
        return {"optim.name": cfg.optim.name, "optim.lr": cfg.optim.lr, **keep}
    return {"optim.name": "adam", "optim.lr": cfg.optim.lr / 10, **keep}


def _adam_off(cfg: Config) -> dict:
    # SGD usually wants about 10x Adam's learning rate; Nesterov momentum 0.9 is the standard partner.
    lr = cfg.optim.lr * 10 if cfg.optim.name in ("adam", "adamw") else cfg.optim.lr
    return {"optim.name": "sgd", "optim.lr": lr, "optim.momentum": 0.9, "optim.nesterov": True}


def _clip_on(cfg: Config) -> dict:
    if cfg.train.clip_norm or cfg.train.clip_value:
        return {"train.clip_norm": cfg.train.clip_norm, "train.clip_value": cfg.train.clip_value}
    return {"train.clip_norm": 1.0}


@dataclass(frozen=True)
class Technique:
    """A technique: ``on(cfg)``/``off(cfg)`` give the overrides that switch it, or a reason it cannot be."""

    name: str
    title: str
    on: Callable[[Config], dict | str]
    off: Callable[[Config], dict | str]


_dropout_on, _dropout_off = _option("dropout", 0.2, 0.0)

TECHNIQUES: dict[str, Technique] = {t.name: t for t in [
    Technique("normalization", "data normalization", lambda c: {"data.normalize": True},
              lambda c: {"data.normalize": False}),
    Technique("augmentation", "augmentation", _augment_on, _augment_off),
    Technique("residual", "residual connections", _residual(True), _residual(False)),
    Technique("batchnorm", "batch norm", _norm_on,
              lambda c: _norm_on(c) if isinstance(_norm_on(c), str) else {"model.norm": "none"}),
    Technique("onecycle", "one-cycle schedule", lambda c: {"schedule.name": "onecycle"},
              lambda c: {"schedule.name": "constant"}),
    Technique("weight_decay", "weight decay",
              lambda c: {"optim.weight_decay": c.optim.weight_decay or 5e-4}, lambda c: {"optim.weight_decay": 0.0}),
    Technique("clipping", "gradient clipping", _clip_on, lambda c: {"train.clip_norm": None, "train.clip_value": None}),
    Technique("adam", "Adam (vs SGD)", _adam_on, _adam_off),
    Technique("dropout", "dropout", _dropout_on, _dropout_off),
    Technique("label_smoothing", "label smoothing", lambda c: {"train.label_smoothing": c.train.label_smoothing or 0.1},
              lambda c: {"train.label_smoothing": 0.0}),
]}

_dropconnect_on, _dropconnect_off = _option("dropconnect", 0.3, 0.0)

# The source texts' last techniques: named with --techniques, not in the default set (which their
# runs would make twice as long); the augmentation technique's off switch (data.augment: {}) would
# also undo the two augmentations, so they are ablated on their own.
OPTIONAL_TECHNIQUES: dict[str, Technique] = {t.name: t for t in [
    Technique("dropconnect", "DropConnect", _dropconnect_on, _dropconnect_off),
    Technique("pca_lighting", "PCA lighting", lambda c: {"data.augment.pca_lighting": c.data.augment.pca_lighting or 0.1},
              lambda c: {"data.augment.pca_lighting": 0.0}),
    Technique("random_resized_crop", "random-resized crop",
              lambda c: {"data.augment.random_resized_crop": list(c.data.augment.random_resized_crop or (0.6, 1.0))},
              lambda c: {"data.augment.random_resized_crop": None}),
]}


def known_techniques() -> dict[str, Technique]:
    """Every technique --techniques may name: the default set, then the optional ones."""
    return {**TECHNIQUES, **OPTIONAL_TECHNIQUES}


def parse_techniques(text: str | None) -> list[str]:
    """``"dropout,adam"`` -> ``["dropout", "adam"]``; None -> all; an unknown name is one line.

    A list that names nothing (``--techniques ,`` or ``""``) is an error, not "all".

    >>> parse_techniques(",")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.errors.CnnlabError: --techniques ',' names no technique; give one or more of adam, ... (comma-separated), ...
    """
    if text is None:
        return list(TECHNIQUES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CnnlabError(f"--techniques {text!r} names no technique; give one or more of "
                          f"{', '.join(sorted(known_techniques()))} (comma-separated), or leave --techniques out for all of them")
    for n in names:
        if n not in known_techniques():
            raise CnnlabError(f"unknown technique '{n}'; {did_you_mean(n, known_techniques())}")
    if len(set(names)) != len(names):
        raise CnnlabError(f"--techniques names a technique twice: {text}")
    return names


@dataclass
class Variant:
    name: str  # "full", "plain", "full - dropout", "plain + dropout"
    kind: str  # full | plain | leave-one-out | add-one
    technique: str | None
    overrides: dict


def _no_model_effect(cfg: Config, on: dict, off: dict, input_size, num_classes: int) -> str | None:
    """A reason when switching a model option builds the same network (dropout on a net with no dense layer)."""
    keys = sorted(k for k in {**on, **off} if k.startswith("model."))
    if not keys or input_size is None:
        return None
    base = config_to_dict(cfg)
    nets = [repr(build_model(_apply(base, o), tuple(input_size), num_classes)) for o in (on, off)]
    if nets[0] != nets[1]:
        return None
    shown = ", ".join(f"{k}={on[k]!r}" for k in keys if k in on)
    return f"{shown} changes nothing in model '{cfg.model.name}' as configured (it builds the same layers)"


def _out_of_scope(cfg: Config, on: dict, off: dict) -> str | None:
    """The scope's reason (config/scope.py) when switching the technique sets a key ``cfg.task`` does not use."""
    base = config_to_dict(cfg)
    for overrides in (on, off):
        for key, why in out_of_scope(_apply(base, overrides)):
            return refusal(cfg.task, key, why)
    return None


def plan(cfg: Config, names: list[str], input_size=None, num_classes: int = 10,
         refuse_scope: bool = False) -> tuple[list[Variant], dict[str, dict]]:
    """The variants to train and, per technique, its on/off overrides or why it does not apply.

    With ``input_size`` (C, H, W) given, a model option whose on and off settings build the same
    network (e.g. dropout where the model puts it on dense layers but has none) is not applicable.
    A technique whose switch sets a key the task does not use is not applicable with the scope's
    reason and ``out_of_scope: true`` -- or, with ``refuse_scope`` (techniques named on the command line),
    refused in one line.
    """
    info: dict[str, dict] = {}
    for n in names:
        t = known_techniques()[n]
        on, off = t.on(cfg), t.off(cfg)
        reason = on if isinstance(on, str) else off if isinstance(off, str) else None
        scoped = reason is None and (reason := _out_of_scope(cfg, on, off)) is not None
        if reason is None:
            reason = _no_model_effect(cfg, on, off, input_size, num_classes)
        info[n] = {"title": t.title, "applicable": reason is None, "reason": reason,
                   "on": None if reason else on, "off": None if reason else off,
                   "in_recipe": None if reason else _in_recipe(cfg, on, off)}
        if scoped:
            if refuse_scope:
                raise CnnlabError(f"technique '{n}' cannot be ablated: {reason}; leave it out of --techniques")
            info[n]["out_of_scope"] = True
    usable = [n for n in names if info[n]["applicable"]]
    if not usable:
        raise CnnlabError(f"none of the techniques {', '.join(names)} can be switched in this config: " +
                          "; ".join(f"{n}: {info[n]['reason']}" for n in names))
    full = {k: v for n in usable for k, v in info[n]["on"].items()}
    plain = {k: v for n in usable for k, v in info[n]["off"].items()}
    variants = [Variant("full", "full", None, full), Variant("plain", "plain", None, plain)]
    variants += [Variant(f"full - {n}", "leave-one-out", n, {**full, **info[n]["off"]}) for n in usable]
    variants += [Variant(f"plain + {n}", "add-one", n, {**plain, **info[n]["on"]}) for n in usable]
    return variants, info


def _in_recipe(cfg: Config, on: dict, off: dict) -> bool:
    """Does the given config already use the technique (its 'on' setting differs from 'off' and matches cfg)?"""
    base = config_to_dict(cfg)
    return config_to_dict(_apply(base, on)) == base and on != off


def _apply(raw: dict, overrides: dict) -> Config:
    import copy

    return config_with_overrides(raw, copy.deepcopy(overrides))


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _scope_notice(cfg: Config, info: dict[str, dict]) -> None:
    """One line naming the default techniques left out because the task does not use what they set."""
    scoped = [n for n, t in info.items() if t.get("out_of_scope")]
    if scoped:
        print(f"cnnlab ablate: task={cfg.task} leaves out {', '.join(scoped)} (" +
              "; ".join(info[n]["reason"] for n in scoped) + ")", file=sys.stderr, flush=True)


def _stats(runs: list[dict], metric: str) -> dict:
    """A variant's metric and seconds over its seeds: the generic keys, and classification's own as they were."""
    values = [r[metric] for r in runs]
    mean, std = _mean_std(values)
    finite = [v for v in values if v is not None]
    median = statistics.median(finite) if finite else None
    out = {"test_metric_mean": mean, "test_metric_std": std, "test_metric_median": median}
    if metric == "test_accuracy":  # the keys readers of classification ablations know
        out = {"test_accuracy_mean": mean, "test_accuracy_std": std, "test_accuracy_median": median, **out}
    sec_mean, sec_std = _mean_std([r["train_seconds"] for r in runs])
    return {**out, "train_seconds_mean": sec_mean, "train_seconds_std": sec_std}


def run_ablation(cfg: Config, out: str | Path, *, techniques: list[str] | None = None, seeds: int = 1,
                 overwrite: bool = False, quiet: bool = False, source: str = "") -> dict:
    """Train every variant with every seed into ``out/variants/``; write ``ablation.json`` and ``ablation.png``.

    Returns the ablation record (also ``summary.json``): ``metric`` names the task's headline test
    metric (``test_accuracy``, ``test_map50``); per variant its mean, standard deviation and median
    over seeds (``test_metric_mean``, ...; a classifier's also as ``test_accuracy_mean``, ...), the
    training seconds, and the change against the reference (full for leave-one-out, plain for
    add-one: ``delta_metric``, with ``effect`` better/worse by the metric's direction).
    ``techniques=None`` is the default set, less what the task does not use (a notice says which).
    """

    check_int_range("--seeds", seeds, 1, 100, "each seed trains every variant once more")
    out = Path(out)
    task = get_task(cfg.task)
    headline, metric = task.headline, task.headline.test_metric
    check_scope(cfg)  # before anything is created: every variant would refuse it
    task.check(cfg)
    check_out_dir(out, overwrite, kind="ablation", inputs=config_inputs(cfg, source))
    names = techniques or list(TECHNIQUES)
    plan(cfg, names, refuse_scope=bool(techniques))  # refusals that need no data, before it is read
    data = task.load_source(cfg)  # the variants differ in normalisation/augmentation, never in the files read
    shape = (data.input_size, data.num_classes) if data is not None else (None, 10)
    variants, info = plan(cfg, names, *shape)
    _scope_notice(cfg, info)
    base_raw = config_to_dict(cfg)
    configs = {v.name: _apply(base_raw, v.overrides) for v in variants}  # every variant validates before work
    results: list[dict] = []
    start = time.perf_counter()
    with open_run_dir(out, overwrite=overwrite, kind="ablation"):
        total = len(variants) * seeds
        for i, v in enumerate(variants):
            runs = []
            for s in range(seeds):
                vcfg = _apply(config_to_dict(configs[v.name]), {"train.seed": cfg.train.seed + s})
                slug = v.name.replace(" - ", "-minus-").replace(" + ", "-plus-")
                run_dir = out / "variants" / f"{slug}-seed{s}"
                summary = train(vcfg, run_dir, data=data, quiet=True)
                runs.append({"seed": vcfg.train.seed, metric: summary.get(metric),
                             "train_seconds": summary.get("train_seconds"), "status": summary.get("status"),
                             "run_dir": str(run_dir)})
                if not quiet:
                    value = summary.get(metric)
                    print(f"[{i * seeds + s + 1}/{total}] {v.name:<28} seed {vcfg.train.seed}  test {headline.name} "
                          f"{'-' if value is None else f'{value:.4f}'}  {summary.get('train_seconds', 0):.1f}s",
                          file=sys.stderr, flush=True)
            results.append({"variant": v.name, "kind": v.kind, "technique": v.technique, "overrides": v.overrides,
                            **_stats(runs, metric), "runs": runs})
        ref = {r["kind"]: r for r in results if r["kind"] in ("full", "plain")}
        for r in results:
            base = ref["full"] if r["kind"] == "leave-one-out" else ref["plain"] if r["kind"] == "add-one" else None
            if base is not None and r["test_metric_mean"] is not None and base["test_metric_mean"] is not None:
                delta = r["test_metric_mean"] - base["test_metric_mean"]
                if metric == "test_accuracy":
                    r["delta_accuracy"] = delta
                r["delta_metric"] = delta
                r["effect"] = headline.better(delta)
                r["delta_seconds"] = r["train_seconds_mean"] - base["train_seconds_mean"]
        record = {"kind": "ablation", "config": source or cfg.name, "task": cfg.task, "metric": metric,
                  "direction": headline.direction, "seeds": seeds, "techniques": info,
                  "variants": results, "wall_seconds": round(time.perf_counter() - start, 3),
                  metric: ref["full"]["test_metric_mean"],  # the full recipe's, under the summary's own key
                  "train_seconds": round(sum(r["train_seconds_mean"] or 0 for r in results) * seeds, 3)}
        write_json_atomic(out / "ablation.json", record)
        write_json_atomic(out / "summary.json", record)
        plot_ablation(record, out / "ablation.png")
    return record


def _display(record: dict) -> tuple[str, str, float, str]:
    """(the metric's name, its key, the scale of a change, the change's unit) for the table and the plot."""
    headline = task_class(record.get("task", "classify")).headline
    return headline.name, record.get("metric", "test_accuracy"), *((100.0, "points") if headline.fraction
                                                                   else (1.0, "change"))


def format_table(record: dict) -> str:
    """The table: variant, test metric mean ± std and median, change vs its reference (better/worse), seconds."""
    seeds = record["seeds"]
    name, _, scale, unit = _display(record)
    lines = [f"{'variant':<30}{'test ' + name:>22}{'median':>9}{'vs ref (' + unit + ')':>24}{'train s':>14}"]
    for r in record["variants"]:
        value = "-" if r["test_metric_mean"] is None else f"{r['test_metric_mean']:.4f} ± {r['test_metric_std']:.4f}"
        delta = f"{scale * r['delta_metric']:+.2f} {r['effect']:<6}" if r.get("delta_metric") is not None else ""
        secs = "-" if r["train_seconds_mean"] is None else f"{r['train_seconds_mean']:.1f} ± {r['train_seconds_std']:.1f}"
        med = r.get("test_metric_median")
        med = "-" if med is None else f"{med:.4f}"
        lines.append(f"{r['variant']:<30}{value:>22}{med:>9}{delta:>24}{secs:>14}")
    for n, t in record["techniques"].items():
        if not t["applicable"]:
            lines.append(f"{'(' + n + ')':<30}  not applicable: {t['reason']}")
    lines.append(f"mean ± std over {seeds} seed(s); 'vs ref' = change against full (leave-one-out) or plain (add-one)")
    return "\n".join(lines)


def plot_ablation(record: dict, path: Path) -> None:
    """Two bar charts of the test metric: lost removing each technique from the full recipe, gained adding it to plain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, metric, scale, unit = _display(record)
    better = "> 0" if record.get("direction", "max") == "max" else "< 0"
    panels = [("leave-one-out", "full recipe minus one technique", "#c44e52"),
              ("add-one", "plain baseline plus one technique", "#4c72b0")]
    rows = max(1, max(sum(r["kind"] == k for r in record["variants"]) for k, _, _ in panels))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * rows + 2), sharey=False)
    for ax, (kind, title, colour) in zip(axes, panels):
        items = [r for r in record["variants"] if r["kind"] == kind and r.get("delta_metric") is not None]
        names = [r["technique"] for r in items][::-1]
        deltas = [scale * r["delta_metric"] for r in items][::-1]
        errs = [scale * (r["test_metric_std"] or 0) for r in items][::-1]
        ax.barh(names, deltas, xerr=errs if record["seeds"] > 1 else None, color=colour, alpha=0.85)
        ax.axvline(0, color="black", lw=0.8)
        ref = next(r for r in record["variants"] if r["kind"] == ("full" if kind == "leave-one-out" else "plain"))
        if record["seeds"] > 1:  # each seed against the reference's run with the same seed: shows a diverged seed
            ref_by_seed = {run["seed"]: run[metric] for run in ref["runs"]}
            for y, r in enumerate(items[::-1]):
                paired = [scale * (run[metric] - ref_by_seed[run["seed"]]) for run in r["runs"]
                          if run[metric] is not None and ref_by_seed.get(run["seed"]) is not None]
                ax.scatter(paired, [y] * len(paired), s=14, color="black", zorder=3,
                           label="each seed vs the reference's same seed" if y == 0 else None)
            ax.legend(fontsize=8, loc="lower right")
        shown = (f"{100 * (ref['test_metric_mean'] or 0):.2f}%" if unit == "points"
                 else f"{ref['test_metric_mean'] or 0:.4f}")
        ax.set_title(f"{title}\n(reference test {name} {shown})", fontsize=10)
        ax.set_xlabel(f"change in test {name} ({unit}; {better} is better)")
        ax.grid(axis="x", alpha=0.3)
    na = [n for n, t in record["techniques"].items() if not t["applicable"]]
    fig.suptitle(f"ablation of {record['config']} ({record['seeds']} seed(s); error bars: std over seeds)"
                 + (f"; not applicable: {', '.join(na)}" if na else ""), fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
