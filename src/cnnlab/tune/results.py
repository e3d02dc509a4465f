"""What a sweep shows: the trials table (``trials.csv``, ``--status``), plots, ``summary.json``, ``report.html``.

Everything here is read back from the Optuna study (any storage), so ``cnnlab sweep --status DIR``
shows the same table while workers are still running, on any machine that reaches the storage.

Plots (``plots/``):

- ``parallel_coordinates.png`` — Optuna's parallel-coordinate plot: each completed trial a line
  through its parameter values to its objective value;
- ``importance.png`` — parameter importances (Optuna's default PED-ANOVA evaluator, which needs
  no scikit-learn and handles conditional parameters), as bars;
- ``slice.png`` — the objective against each parameter (Optuna's slice plot);
- ``best_vs_time.png`` — the best objective so far against wall-clock time since the first trial
  started, with every finished trial as a dot (completed, pruned).

A plot that cannot be drawn yet (e.g. importance needs two completed trials) is listed in
``summary.json`` under ``plots_skipped`` with the reason, never silently missing.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import time
import warnings
from pathlib import Path
from typing import Any

from cnnlab.fileio import atomic_path, write_json_atomic, write_text_atomic

PLOTS_DIR = "plots"


def trial_state(t) -> str:
    """complete, pruned, fail, interrupted, running or waiting."""
    state = t.state.name.lower()
    if state == "fail" and t.user_attrs.get("interrupted"):
        return "interrupted"
    return state


def trial_rows(study, sweep_dir: Path | None = None) -> tuple[list[dict], list[str]]:
    """One dict per trial (number order) and the parameter names in first-seen order."""
    params: list[str] = []
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        for k in t.params:
            if k not in params:
                params.append(k)
        ua = t.user_attrs
        run_dir = ua.get("run_dir")
        if run_dir and ua.get("sweep_dir"):
            run_dir = str(Path(ua["sweep_dir"]) / run_dir)
        value = t.value if t.state.name == "COMPLETE" else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        wall = None
        if t.datetime_start and t.datetime_complete:
            wall = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append({"number": t.number, "state": trial_state(t), "value": value,
                     **{f"param:{k}": v for k, v in t.params.items()},
                     "epochs": ua.get("epochs") if ua.get("epochs") is not None else len(t.intermediate_values),
                     "test_accuracy": ua.get("test_accuracy"), "train_seconds": ua.get("train_seconds"),
                     # the task's headline test metric (test_map50 for a detector)
                     "test_metric": ua.get("test_metric", "test_accuracy"),
                     "test_value": ua.get(ua.get("test_metric", "test_accuracy")),
                     "seconds": ua.get("seconds", wall), "started": _iso(t.datetime_start),
                     "completed": _iso(t.datetime_complete), "worker": ua.get("worker"), "host": ua.get("host"),
                     "run_dir": run_dir, "error": ua.get("error"), "retry_of": ua.get("retry_of")})
    return rows, params


def _iso(dt) -> str | None:
    return dt.isoformat(timespec="seconds") if dt else None


def write_trials_csv(path: Path, rows: list[dict], params: list[str]) -> None:
    columns = ["number", "state", "value", *[f"param:{k}" for k in params], "epochs", "test_accuracy",
               "train_seconds", "seconds", "started", "completed", "worker", "host", "run_dir", "error", "retry_of"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    write_text_atomic(path, buf.getvalue())


def format_table(rows: list[dict], params: list[str], metric: str) -> str:
    """The ``--status`` table: one line per trial."""
    test_metrics = {r.get("test_metric", "test_accuracy") for r in rows} or {"test_accuracy"}
    shown = "test acc" if test_metrics == {"test_accuracy"} else " / ".join(sorted(test_metrics)).replace("_", " ")
    headers = ["#", "state", metric, *params, "epochs", shown, "seconds"]
    lines = []
    for r in rows:
        test = r.get("test_value", r["test_accuracy"])
        value = r["value"]
        cells = [str(r["number"]), r["state"], "" if value is None else f"{value:.4f}",
                 *[_short(r.get(f"param:{k}")) for k in params], "" if r["epochs"] is None else str(r["epochs"]),
                 "" if test is None else f"{test:.4f}",
                 "" if r["seconds"] is None else f"{r['seconds']:.1f}"]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)) for cells in lines]
    return "\n".join(out)


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def counts_by_state(rows: list[dict]) -> dict[str, int]:
    counts = {s: 0 for s in ("complete", "pruned", "fail", "interrupted", "running", "waiting")}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return counts


# ----------------------------------------------------------------------------- plots


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)


def importances(study) -> dict[str, float]:
    """Normalised parameter importances over the completed trials (Optuna's default evaluator)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}


def best_so_far(rows: list[dict], direction: str) -> list[tuple[float, float]]:
    """``[(seconds since the first trial started, best value so far), ...]`` at each completed trial."""
    import datetime

    starts = [r["started"] for r in rows if r["started"]]
    if not starts:
        return []
    t0 = min(datetime.datetime.fromisoformat(s) for s in starts)
    done = sorted((datetime.datetime.fromisoformat(r["completed"]), r["value"]) for r in rows
                  if r["state"] == "complete" and r["completed"] and r["value"] is not None)
    out, best = [], None
    for when, value in done:
        if best is None or (value > best if direction == "maximize" else value < best):
            best = value
        out.append(((when - t0).total_seconds(), best))
    return out


def make_plots(sweep_dir: Path, study, rows: list[dict], direction: str, metric: str) -> tuple[dict, dict]:
    """Draw the four plots; returns ({name: file}, {name: reason it was skipped})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    folder = sweep_dir / PLOTS_DIR
    folder.mkdir(exist_ok=True)
    made, skipped = {}, {}
    complete = [r for r in rows if r["state"] == "complete"]
    if not complete:
        reason = "no completed trial yet"
        return {}, {k: reason for k in ("parallel_coordinates", "importance", "slice", "best_vs_time")}

    def optuna_plot(name: str, draw) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                ax = draw()
            first = ax.flat[0] if hasattr(ax, "flat") else ax
            fig = first.figure
            axes = len(ax.flat) if hasattr(ax, "flat") else 1
            fig.set_size_inches(max(fig.get_size_inches()[0], 10, 3.2 * axes), max(fig.get_size_inches()[1], 4.5))
            _save(fig, folder / f"{name}.png")
            made[name] = f"{PLOTS_DIR}/{name}.png"
        except Exception as exc:  # a plot must never lose the sweep's other outputs
            plt.close("all")
            skipped[name] = " ".join(str(exc).split())[:200] or type(exc).__name__

    optuna_plot("parallel_coordinates", lambda: ovm.plot_parallel_coordinate(study, target_name=metric))
    optuna_plot("slice", lambda: ovm.plot_slice(study, target_name=metric))

    try:
        imp = importances(study)
        if not imp:
            raise ValueError("no parameter varied among the completed trials")
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(imp) + 1.2))
        names = list(imp)[::-1]
        ax.barh(names, [imp[n] for n in names], color="#4c72b0")
        ax.set_xlabel("importance (PED-ANOVA, normalised)")
        ax.set_title(f"what mattered for {metric}")
        _save(fig, folder / "importance.png")
        made["importance"] = f"{PLOTS_DIR}/importance.png"
    except Exception as exc:
        plt.close("all")
        skipped["importance"] = " ".join(str(exc).split())[:200] or type(exc).__name__

    curve = best_so_far(rows, direction)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.step([c[0] for c in curve], [c[1] for c in curve], where="post", label="best so far", color="#c44e52")
    import datetime

    starts = [datetime.datetime.fromisoformat(r["started"]) for r in rows if r["started"]]
    t0 = min(starts)
    for state, colour in (("complete", "#4c72b0"), ("pruned", "#aaaaaa")):
        pts = [((datetime.datetime.fromisoformat(r["completed"]) - t0).total_seconds(), r["value"]) for r in rows
               if r["state"] == state and r["completed"] and r["value"] is not None]
        if pts:
            ax.scatter(*zip(*pts), s=14, color=colour, label=state, zorder=3)
    ax.set_xlabel("wall-clock seconds since the first trial started")
    ax.set_ylabel(metric)
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, folder / "best_vs_time.png")
    made["best_vs_time"] = f"{PLOTS_DIR}/best_vs_time.png"
    return made, skipped


# ----------------------------------------------------------------------------- summary and report


def sweep_summary(study, rows: list[dict], params: list[str], metric: str, direction: str,
                  wall_seconds: float | None) -> dict:
    complete = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
    best = None
    if complete:
        best = (max if direction == "maximize" else min)(complete, key=lambda r: r["value"])
    epochs = sum(int(r["epochs"] or 0) for r in rows if r["state"] in ("complete", "pruned", "fail"))
    summary: dict[str, Any] = {
        "kind": "sweep", "study": study.study_name, "metric": metric, "direction": direction,
        "trials": counts_by_state(rows), "trial_epochs": epochs,
        "best_trial": None if best is None else best["number"],
        "best_value": None if best is None else best["value"],
        "best_params": None if best is None else {k: best.get(f"param:{k}") for k in params
                                                  if f"param:{k}" in best},
        "best_run_dir": None if best is None else best["run_dir"],
        "test_accuracy": None if best is None else best["test_accuracy"],
        "train_seconds": round(sum(float(r["train_seconds"] or 0) for r in rows), 3),
        "wall_seconds": None if wall_seconds is None else round(wall_seconds, 3),
        "importances": {},
    }
    if len(complete) >= 2:
        try:
            summary["importances"] = {k: round(v, 4) for k, v in importances(study).items()}
        except Exception as exc:  # too few distinct values: say so
            summary["importances_skipped"] = " ".join(str(exc).split())[:200]
    return summary


def write_outputs(sweep_dir: Path, study, spec, wall_seconds: float | None = None, html_report: bool = True) -> dict:
    """Write ``trials.csv``, ``plots/``, ``summary.json`` and ``report.html``; returns the summary."""
    rows, params = trial_rows(study)
    write_trials_csv(sweep_dir / "trials.csv", rows, params)
    summary = sweep_summary(study, rows, params, spec.metric, spec.direction, wall_seconds)
    summary["name"] = spec.name
    summary["sweep_dir"] = str(sweep_dir)
    made, skipped = make_plots(sweep_dir, study, rows, spec.direction, spec.metric)
    summary["plots"], summary["plots_skipped"] = made, skipped
    write_json_atomic(sweep_dir / "summary.json", summary)
    if html_report:
        write_report(sweep_dir, spec, summary, rows, params)
    return summary


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_report(sweep_dir: Path, spec, summary: dict, rows: list[dict], params: list[str]) -> Path:
    """One self-contained page (plots embedded as base64 PNGs): best trial, importances, plots, every trial."""
    e = html.escape
    best = summary.get("best_params") or {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>sweep {e(spec.name)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
             "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}img{max-width:100%;"
             "margin:1em 0}.pruned{color:#888}.fail,.interrupted{color:#b00}</style></head><body>",
             f"<h1>Sweep {e(spec.name)}</h1>",
             f"<p>{e(spec.description)}</p>",
             f"<p>Study <code>{e(summary['study'])}</code>, objective <b>{e(spec.direction)} {e(spec.metric)}</b>, "
             f"sampler {e(str(spec.sampler))}, pruner {e(str(spec.pruner))}, base <code>{e(spec.base)}</code>.</p>",
             "<p>Trials: " + ", ".join(f"{k} {v}" for k, v in summary["trials"].items() if v) +
             f"; {summary['trial_epochs']} trial-epochs; {summary['train_seconds']:.0f} s of training"
             + (f"; {summary['wall_seconds']:.0f} s wall" if summary.get("wall_seconds") else "") + ".</p>"]
    if summary["best_trial"] is not None:
        parts.append(f"<h2>Best trial: #{summary['best_trial']}</h2><p>{e(spec.metric)} "
                     f"<b>{summary['best_value']:.4f}</b>" + (
                         f", test accuracy <b>{summary['test_accuracy']:.4f}</b>"
                         if summary.get("test_accuracy") is not None else "") +
                     f"; run directory <code>{e(str(summary['best_run_dir']))}</code></p><table>" +
                     "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in best.items()) + "</table>")
    if summary.get("importances"):
        parts.append("<h2>Parameter importance</h2><table><tr><th>parameter</th><th>importance</th></tr>" +
                     "".join(f"<tr><td>{e(k)}</td><td>{v:.3f}</td></tr>" for k, v in summary["importances"].items())
                     + "</table>")
    for name, title in (("best_vs_time", "Best so far against wall time"), ("importance", "Importance"),
                        ("parallel_coordinates", "Parallel coordinates"), ("slice", "Objective against each parameter")):
        file = summary["plots"].get(name)
        if file:
            parts.append(f"<h2>{title}</h2>{_img(sweep_dir / file)}")
        elif name in summary["plots_skipped"]:
            parts.append(f"<h2>{title}</h2><p>not drawn: {e(summary['plots_skipped'][name])}</p>")
    headers = ["#", "state", spec.metric, *params, "epochs", "test accuracy", "seconds", "run directory", "error"]
    parts.append("<h2>All trials</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr>")
    for r in rows:
        cells = [r["number"], r["state"], "" if r["value"] is None else f"{r['value']:.4f}",
                 *[_short(r.get(f"param:{k}")) for k in params], r["epochs"],
                 "" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}",
                 "" if r["seconds"] is None else f"{r['seconds']:.1f}", r["run_dir"] or "", r["error"] or ""]
        parts.append(f"<tr class='{e(r['state'])}'>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    parts.append(f"</table><p>Written {time.strftime('%Y-%m-%d %H:%M:%S')} by cnnlab.</p></body></html>")
    path = sweep_dir / "report.html"
    write_text_atomic(path, "\n".join(parts))
    return path


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
