"""The learning-rate range test (Smith, 2015; fastai's ``lr_find``): one short run with a rising rate.

A fresh copy of the configured model trains for up to ``steps`` batches while the learning rate
grows exponentially from ``start_lr`` to ``end_lr`` (``lr_i = start * (end/start)^(i/(steps-1))``).
The loss is smoothed with a bias-corrected exponential moving average (``beta`` = 0.9), and the
test stops once the smoothed loss exceeds ``DIVERGE`` x its minimum (or turns non-finite): past that
point the rate is too high. The **suggested** rate is the middle of the curve's *floor* divided by
10 — the rule of thumb for the peak of a one-cycle schedule (a rate still safely on the falling
side). The floor is the span of rates from the first to the last step whose smoothed loss is within
``FLOOR`` (10 %) of the curve's whole fall above its minimum, and its middle is their geometric mean.
For a sharp minimum this is the minimum's rate; on a flat floor it does not hang on which step of
the floor happens to be lowest: on ``fashion-convnet`` the floor spans two decades and the plain
"minimum / 10" rule suggested 0.0007 to 0.024 over five seeds, the floor's middle 0.0034 to 0.0063
(docs/manual/techniques.md). The rates of the minimum and of the steepest descent are reported beside it.

The optimizer, weight decay, augmentation, precision, batch size and first-layer whitening are the
config's own (EMA, Lookahead and test-time augmentation play no part in a loss curve); only the
learning rate follows the test's ramp (its schedule is ignored). The global RNG state is saved and
restored, so a training run that uses the test first (``schedule.max_lr=find``) draws the same
initial weights and batches as without it.

>>> import torch
>>> ramp = lr_ramp(1e-4, 1.0, 5)
>>> [f"{v:.0e}" for v in ramp]
['1e-04', '1e-03', '1e-02', '1e-01', '1e+00']
>>> smooth([1.0, 1.0, 1.0], 0.9)  # bias-corrected: a constant stays constant
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
import time

import torch

from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_path, write_json_atomic
from cnnlab.rundir import check_out_dir, open_run_dir
from cnnlab.runs import resolve_device
from cnnlab.train.fastpath import effective_config
from cnnlab.train.optim import build_optimizer
from cnnlab.tasks import get_task
from cnnlab.train.precision import make_scaler

DIVERGE = 4.0  # stop once the smoothed loss exceeds this many times its minimum
BETA = 0.9  # about 10 steps of memory: over 8 decades in 100-200 steps, 0.98 lagged the curve by 2 decades
FLOOR = 0.1  # the floor: within this fraction of the curve's fall (first smoothed loss - minimum) above the minimum
MIN_USEFUL = 10  # a test that diverges before this many steps (or never falls) says nothing
# 90, not fastai's 100: on cifar10-cpu (1,950 training steps) the test must cost at most 5 % of the
# training it precedes, and 100 steps were 5.1 % (docs/manual/techniques.md has the measurement)
DEFAULT_STEPS = 90


def lr_ramp(start: float, end: float, steps: int) -> list[float]:
    """``steps`` rates rising exponentially from ``start`` to ``end``."""
    if steps == 1:
        return [start]
    return [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    """Bias-corrected exponential moving average of ``losses``."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def floor_span(smoothed: list[float], best: int) -> tuple[int, int]:
    """First and last step whose smoothed loss is within :data:`FLOOR` of the fall above the minimum.

    >>> floor_span([2.0, 1.5, 1.02, 1.0, 1.05, 1.5, 3.0], 3)  # fall 1.0: the floor is at most 1.1
    (2, 4)
    """
    limit = smoothed[best] + FLOOR * (smoothed[0] - smoothed[best])
    inside = [i for i, v in enumerate(smoothed) if v <= limit]
    return inside[0], inside[-1]


def suggest(lrs: list[float], smoothed: list[float]) -> dict:
    """``{"suggested_lr", "min_loss_lr", "floor_lrs", "steepest_lr"}`` from the smoothed curve (up to its stop).

    >>> s = suggest([1e-3, 1e-2, 1e-1, 1.0, 10.0], [2.0, 1.0, 1.05, 1.0, 3.0])  # a flat floor 1e-2..1
    >>> f"{s['suggested_lr']:.3g}", f"{s['min_loss_lr']:.3g}"
    ('0.01', '0.01')
    """
    best = min(range(len(smoothed)), key=lambda i: smoothed[i])
    low, high = floor_span(smoothed, best)
    middle = math.sqrt(lrs[low] * lrs[high])  # the floor's middle on the log axis
    # steepest fall of the smoothed loss per unit of log(lr), before the minimum
    slopes = [(smoothed[i + 1] - smoothed[i - 1]) / (math.log(lrs[i + 1]) - math.log(lrs[i - 1]))
              for i in range(1, max(best, 1))]
    steep = 1 + min(range(len(slopes)), key=lambda i: slopes[i]) if slopes else best
    return {"suggested_lr": middle / 10, "min_loss_lr": lrs[best], "floor_lrs": [lrs[low], lrs[high]],
            "steepest_lr": lrs[steep], "min_loss": smoothed[best]}


class _RangeTestRun:
    """What :meth:`Task.setup` and :meth:`Task.training_loss` read of a trainer, for the test's model copy."""

    def __init__(self, cfg, model, device) -> None:
        self.cfg, self.model, self.train_model, self.device = cfg, model, model, device


def range_test(cfg, task, data, device, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = DEFAULT_STEPS,
               notice=None) -> dict:
    """Run the range test for ``cfg`` on ``data.train`` (a :class:`~cnnlab.tasks.base.TaskData` of ``task``).

    The model is the task's own (:meth:`Task.build_model`), its loss the task's training loss, so
    any task's run can find its rate. Returns the result dict (see the module docstring); raises a
    one-line error when the loss diverges at once (or never falls): no rate in the range trains it.
    """

    if not (0 < start_lr < end_lr):
        raise CnnlabError(f"the range test needs 0 < --start-lr < --end-lr, got {start_lr:g} and {end_lr:g}")
    if not 20 <= steps <= 100_000:
        raise CnnlabError(f"--steps {steps} is out of range; expected an integer in [20, 100,000]")
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.train.seed)
        model = task.build_model(cfg, data)  # a copy on the data's device: nothing else sees it
        probe = _RangeTestRun(cfg, model, device)
        task.setup(probe)
        optimizer = build_optimizer(model, cfg.optim)
        scaler = make_scaler(cfg.train.precision, device)
        lrs, losses, smoothed = [], [], []
        ramp = lr_ramp(start_lr, end_lr, steps)
        model.train()
        epoch, stop = 0, "end of range"
        batches, seen = data.train.epoch(epoch), False
        while len(lrs) < steps:
            try:
                x, y = next(batches)
            except StopIteration:
                if not seen:  # a whole epoch without a batch: another would bring none either
                    raise CnnlabError("the learning-rate range test got no training batch; lower data.batch_size") from None
                epoch += 1
                batches, seen = data.train.epoch(epoch), False
                continue
            seen = True
            lr = ramp[len(lrs)]
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            loss, _ = task.training_loss(probe, x, y)
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            lrs.append(lr)
            losses.append(value)
            if not math.isfinite(value):
                stop = "non-finite loss"
                break
            smoothed = smooth(losses)
            if smoothed[-1] > DIVERGE * min(smoothed) and len(lrs) > 1:
                stop = "diverged"
                break
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    if finite:
        smoothed = smooth([losses[i] for i in finite])
    best = min(range(len(smoothed)), key=lambda i: smoothed[i]) if smoothed else 0
    if len(finite) < MIN_USEFUL or best == 0:
        raise CnnlabError(f"the loss diverged at once in the learning-rate range test ({stop} after {len(lrs)} "
                          f"steps, from lr {start_lr:g}): no rate in [{start_lr:g}, {end_lr:g}] lowers it; "
                          "lower --start-lr, or check the config trains at all with `cnnlab train`")
    result = {"kind": "lr_find", "config": cfg.name, "steps": len(lrs), "stop": stop, "start_lr": start_lr,
              "end_lr": end_lr, "lrs": lrs[:len(finite)], "losses": [losses[i] for i in finite],
              "smoothed": smoothed, "optimizer": cfg.optim.name, "batch_size": data.train.batch_size,
              "seconds": round(time.perf_counter() - t0, 3),
              **suggest(lrs[:len(finite)], smoothed)}
    if notice:
        notice(f"lr range test: {len(lrs)} steps ({stop}); loss lowest at lr {result['min_loss_lr']:.3g} "
               f"(floor {result['floor_lrs'][0]:.3g} to {result['floor_lrs'][1]:.3g}), "
               f"suggested peak lr {result['suggested_lr']:.3g}")
    return result


def plot_range_test(result: dict, out_path) -> None:
    """``lr_find.png``: loss (raw and smoothed) against the rate on a log axis, the suggestion marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result["lrs"], result["losses"], color="0.75", linewidth=0.8, label="loss")
    ax.plot(result["lrs"], result["smoothed"], color="C0", label="smoothed loss")
    low, high = result["floor_lrs"]
    ax.axvspan(low, high, color="C2", alpha=0.12, label=f"floor {low:.2g} to {high:.2g}")
    ax.axvline(result["suggested_lr"], color="C3", linestyle="--",
               label=f"suggested {result['suggested_lr']:.2g} (floor's middle / 10)")
    ax.axvline(result["min_loss_lr"], color="0.4", linestyle=":", label=f"minimum {result['min_loss_lr']:.2g}")
    ax.set_xscale("log")
    top = max(result["smoothed"][:max(1, len(result["smoothed"]))])
    ax.set_ylim(min(min(result["losses"]), min(result["smoothed"])) * 0.9, min(top, DIVERGE * result["min_loss"]) * 1.05)
    ax.set(xlabel="learning rate", ylabel="training loss",
           title=f"learning-rate range test: {result['config']} ({result['optimizer']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def apply_found_lr(cfg, lr: float) -> None:
    """``schedule.max_lr=find``: one-cycle peaks at ``lr``; any other schedule starts from it (in place)."""
    if cfg.schedule.name == "onecycle":
        cfg.schedule.peak_lr = lr
    else:
        cfg.optim.lr = lr


def prepare(cfg, data=None, notice=None):
    """``(cfg as it runs, task, its TaskData, device)`` for a range test of ``cfg`` (any task).

    ``data`` is a dataset already decoded (:meth:`Task.load_source`); None: the task loads it.
    A batch larger than the training images is one batch of all of them, as in ``cnnlab train``.
    """
    if "features_from" in cfg.model.options or "weights" in cfg.model.options:
        raise CnnlabError("the learning-rate range test trains the config's model from scratch; drop model.weights "
                          "and model.features_from for it")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    cfg = effective_config(cfg, device, cfg.data.batch_size, notice=lambda m: None)
    task = get_task(cfg.task)
    data = task.load(cfg, device, data, notice=None)
    n = data.counts["train"]
    if data.train.batch_size > n:
        data.train.batch_size = n
        if notice:
            notice(f"notice: data.batch_size={cfg.data.batch_size} is larger than the {n} training images; "
                   f"using batches of {n}")
    return cfg, task, data, device


RECORD_FILE = "lr_find.json"  # in a run directory: the rate schedule.max_lr=find found, which --resume reuses
ENTRY_KEYS = ("suggested_lr", "min_loss_lr", "steepest_lr", "steps", "stop", "seconds")


def find_and_apply(cfg, task, data, device, notice=None, recorded=None, share=None) -> dict:
    """``schedule.max_lr=find`` in a run: the range test, then ``cfg`` set to train at its suggestion.

    Returns the summary's ``lr_find`` entry (suggestion, minimum, steepest, steps, stop, seconds).
    ``recorded``: the entry an earlier part of the run found (:func:`recorded_entry`); a resumed run
    trains at that rate rather than testing again, since a second test may land on another rate (a
    GPU's nondeterministic kernels, another thread count or device) and change the schedule mid-run.
    ``share``: the strategy's broadcast, so every rank trains at rank 0's rate, for the same reason.
    """
    if recorded is not None:
        if notice:
            notice(f"lr range test: reusing the rate this run found, suggested peak lr {recorded['suggested_lr']:.3g}")
        entry = recorded
    else:
        found = range_test(cfg, task, data, device, notice=notice)
        entry = {k: found[k] for k in ENTRY_KEYS}
        entry = share(entry) if share else entry
    apply_found_lr(cfg, entry["suggested_lr"])
    return entry


def recorded_entry(run_dir) -> dict | None:
    """The ``lr_find`` entry ``run_dir`` recorded (:data:`RECORD_FILE`); None when it has none."""
    import json
    from pathlib import Path

    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        return None  # a run from before the record, or one that did not find its rate: the test runs again
    try:
        entry = json.loads(path.read_text())
        lr = float(entry["suggested_lr"])
        if not (math.isfinite(lr) and lr > 0) or set(ENTRY_KEYS) - set(entry):
            raise ValueError("not a positive finite suggested_lr with its companions")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CnnlabError(f"cannot resume: {path} is not the range test record cnnlab writes ({exc}); "
                          "restore it, or delete it to run the test again") from None
    return {k: entry[k] for k in ENTRY_KEYS}


def run_lr_find(cfg, out, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = DEFAULT_STEPS, overwrite: bool = False,
                notice=None, inputs=()) -> dict:
    """The range test for ``cfg``; writes ``out/lr_find.json`` and ``out/lr_find.png`` once it has a result."""
    from pathlib import Path


    out = Path(out)
    check_out_dir(out, overwrite, kind="lr-find", inputs=inputs)  # inputs: the paths the test reads
    cfg, task, data, device = prepare(cfg, notice=notice)
    result = range_test(cfg, task, data, device, start_lr=start_lr, end_lr=end_lr, steps=steps, notice=notice)
    # only now: a diverged test leaves nothing
    with open_run_dir(out, overwrite=overwrite, kind="lr-find", inputs=inputs):
        plot_range_test(result, out / "lr_find.png")
        result["plot"] = str(out / "lr_find.png")
        write_json_atomic(out / "lr_find.json", result)
    return result
