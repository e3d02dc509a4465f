"""``report.html``: one self-contained page per run (every image embedded as base64 PNG, no script, no server).

Sections: summary (test accuracy first), config, training curves, confusion matrix,
per-class accuracy, top losses, a prediction grid, the first conv layer's
filters, and attribution maps for a few test images (the most confident mistakes
and some correct ones). The model is evaluated on the test split again while the
page is built, so its numbers are the weights' own, next to what ``summary.json``
recorded.

>>> build_report("runs/mnist-fast")  # doctest: +SKIP
PosixPath('runs/mnist-fast/report.html')
"""

from __future__ import annotations

import base64
import datetime
import html
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from cnnlab.config import dump_config
from cnnlab.data.loader import DeviceBatches
from cnnlab.errors import CnnlabError
from cnnlab.explain import get_method
from cnnlab.explain.figures import explanation_figure
from cnnlab.explain.filters import filters_figure
from cnnlab.explain.layers import last_conv_layer
from cnnlab.explain.predictions import predictions_figure
from cnnlab.explain.workflow import attribute_run, holding_run, load_run_data, model_inputs
from cnnlab.fileio import html_mark, write_text_atomic
from cnnlab.report.curves import plot_curves, read_metrics
from cnnlab.report.evaluation import confusion_matrix, draw_confusion, draw_top_losses
from cnnlab.rundir import check_out_file
from cnnlab.runs import load_run
from cnnlab.train.evaluate import evaluate

Say = Callable[[str], None]

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.92em; } td, th { padding: 0.2em 0.8em; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; } th { background: #e8e8e8; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.headline { font-size: 1.4em; margin: 0.4em 0 1em; } .muted { color: #777; font-size: 0.9em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.bar { display: inline-block; height: 0.8em; background: #4a7fb5; }
nav a { margin-right: 0.8em; }
"""


def png_data_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI (the page then needs no other file)."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise CnnlabError(f"{path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).is_file():
        return f'<p class="muted">({html.escape(alt)}: not available)</p>'
    return f'<img src="{png_data_uri(path)}" alt="{html.escape(alt)}">'


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if value is None else str(value)


def build_report(run_dir, *, out: str | None = None, data_dir: str | None = None, explain_count: int = 4,
                 methods: Sequence[str] = ("gradcam", "integrated_gradients", "occlusion"),
                 overwrite: bool = False, say: Say = lambda s: None) -> Path:
    """Write the run's ``report.html`` (or ``out``) and return its path.

    ``out`` follows the one output policy (:func:`cnnlab.rundir.check_out_file`): an existing
    file is replaced only with ``overwrite`` and only if it is a report page cnnlab wrote.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CnnlabError(f"run directory {run_dir} does not exist")
    target = check_out_file(Path(out) if out else run_dir / "report.html", overwrite, kind="report",
                            suffixes=(".html", ".htm"), inputs=[run_dir])
    for method in methods:
        get_method(method)
    run = load_run(run_dir)
    data = load_run_data(run, data_dir)
    say("evaluating on the test split")
    batches = DeviceBatches(data.test_x, data.test_y, run.config.data.eval_batch_size, mean=run.mean, std=run.std)
    result = evaluate(run.model, batches, keep_logits=True)
    logits, labels = result.logits, result.labels
    probs = logits.softmax(1)
    preds = probs.argmax(1)
    matrix = confusion_matrix(labels, preds, run.num_classes)
    per_class = (matrix.diag().float() / matrix.sum(1).clamp_min(1).float()).tolist()
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    summary = run.summary
    name = summary.get("name") or run.config.name

    with tempfile.TemporaryDirectory(prefix="cnnlab-report-") as tmp_name:
        tmp = Path(tmp_name)
        say("drawing figures")
        curves = run_dir / "curves.png"
        if not curves.is_file():
            curves = plot_curves(run_dir / "metrics.jsonl", tmp / "curves.png")
        confusion = draw_confusion(matrix, run.classes, tmp / "confusion.png")
        worst = losses.argsort(descending=True)[:16]
        top = draw_top_losses(data.test_x[worst], labels[worst], preds[worst], probs[worst], losses[worst],
                              run.classes, tmp / "top_losses.png")
        g = torch.Generator().manual_seed(0)
        pick = torch.randperm(len(labels), generator=g)[:24]
        grid = predictions_figure(data.test_x[pick], labels[pick], probs[pick], run.classes, 3, 8,
                                  tmp / "predictions.png", pick.tolist())
        filters = filters_figure(run.model, None, tmp / "filters.png")
        # explanations: the most confident mistakes, then the first correct images
        wrong = torch.nonzero(preds != labels).flatten()
        wrong = wrong[probs[wrong, preds[wrong]].argsort(descending=True)][: explain_count // 2]
        right = torch.nonzero(preds == labels).flatten()[: explain_count - len(wrong)]
        chosen = torch.cat([wrong, right]).tolist()
        x = model_inputs(run, data.test_x[chosen])
        layer = last_conv_layer(run.model, run.input_size)
        maps = {}
        if chosen:  # --explain 0 asks for none: nothing to say per method
            say(f"explaining {len(chosen)} test images with {', '.join(methods)}")
        for m in methods if chosen else ():
            maps[m] = attribute_run(run, m, x, preds[chosen], layer, data)
        explained = []
        for k, i in enumerate(chosen):
            caption = [f"test #{i}", f"true  {run.classes[int(labels[i])]}",
                       f"pred  {run.classes[int(preds[i])]} {float(probs[i, preds[i]]):.3f}"]
            path = explanation_figure(data.test_x[i], caption, {m: maps[m][k] for m in methods},
                                      {m: get_method(m).signed for m in methods}, tmp / f"explain-{i}.png")
            explained.append((i, path))

        recorded = summary.get("test_accuracy")
        _, epochs = read_metrics(run_dir / "metrics.jsonl")
        rows = [("test accuracy (recomputed now)", f"{result.accuracy:.4f}"),
                ("test accuracy (summary.json)", _fmt(recorded)),
                ("test loss", f"{result.loss:.4f}"), ("test images", _fmt(result.count)),
                ("model", f"{run.config.model.name} ({_fmt(summary.get('params'))} parameters)"),
                ("dataset", f"{summary.get('dataset', run.config.data.name)} {'x'.join(map(str, run.input_size))}, "
                            f"{run.num_classes} classes"),
                ("epochs", _fmt(summary.get("epochs"))), ("status", _fmt(summary.get("status"))),
                ("training seconds", _fmt(summary.get("train_seconds"))),
                ("images / s", _fmt(summary.get("images_per_second"))),
                ("device", _fmt(summary.get("device"))), ("seed", _fmt(summary.get("seed"))),
                ("weights", run.weights_file.name),
                ("versions", ", ".join(f"{k} {v}" for k, v in (summary.get("versions") or {}).items()) or "—")]
        width = 300
        class_rows = "".join(
            f"<tr><td>{html.escape(c)}</td><td class='num'>{int(matrix[j].sum())}</td>"
            f"<td class='num'>{a:.4f}</td><td><span class='bar' style='width:{a * width:.0f}px'></span></td></tr>"
            for j, (c, a) in enumerate(zip(run.classes, per_class)))
        epoch_rows = "".join(
            f"<tr><td class='num'>{e.get('epoch')}</td><td class='num'>{_fmt(e.get('train_loss'))}</td>"
            f"<td class='num'>{_fmt(e.get('train_accuracy'))}</td><td class='num'>{_fmt(e.get('val_accuracy'))}</td>"
            f"<td class='num'>{_fmt(e.get('lr'))}</td></tr>" for e in epochs)
        sections = [
            ("summary", "Summary", _table(rows)),
            ("curves", "Training curves",
             _img(curves, "training curves")
             + (f"<table><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>val acc</th><th>lr</th></tr>"
                f"{epoch_rows}</table>" if epoch_rows else "")),
            ("confusion", "Confusion matrix", _img(confusion, "confusion matrix")),
            ("classes", "Per-class accuracy",
             f"<table><tr><th>class</th><th>test images</th><th>accuracy</th><th></th></tr>{class_rows}</table>"),
            ("losses", "Top losses", _img(top, "top losses")),
            ("predictions", "Predictions", _img(Path(grid["figure"]), "prediction grid")),
            ("filters", f"Filters of {filters['layer']}", _img(Path(filters["figure"]), "filters")),
            ("explanations", "Explanations",
             (f"<p class='muted'>{', '.join(methods)} for the predicted class; Grad-CAM on layer "
              f"{html.escape(layer)}; most confident mistakes first.</p>" if explained else
              "<p class='muted'>none asked for (--explain 0).</p>")
             + "".join(_img(p, f"explanation of test image {i}") for i, p in explained)),
            ("config", "Config", f"<pre>{html.escape(dump_config(run.config))}</pre>"),
        ]
        nav = " ".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title, _ in sections)
        body = "\n".join(f'<section id="{key}"><h2>{html.escape(title)}</h2>\n{content}</section>'
                         for key, title, content in sections)
        made = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>{html_mark('report')}"
                f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>cnnlab report: {html.escape(name)}</title><style>{CSS}</style>"
                f"<link rel='icon' href='data:,'></head><body>\n"
                f"<h1>{html.escape(name)}</h1><p class='muted'>{html.escape(str(run_dir))} · made {made} by cnnlab</p>"
                f"<p class='headline'>test accuracy <b>{result.accuracy:.4f}</b> "
                f"({result.accuracy * 100:.2f} %) on {result.count:,} test images</p>"
                f"<nav>{nav}</nav>\n{body}\n</body></html>\n")
    with holding_run(run_dir, target):
        write_text_atomic(target, page)
    return target
