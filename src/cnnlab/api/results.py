"""Result objects of the Python API: plain data underneath, a readable ``repr``, and HTML/PNG in Jupyter.

Each keeps what the CLI's ``--json`` prints (``.data`` / ``dict(result)``), so a notebook and a
script see the same numbers; the rich forms (``_repr_html_``, ``_repr_png_``) are only views.

>>> p = Predictions([{"image": "a.png", "top": [{"class": "7", "probability": 0.99}]}])
>>> p
Predictions(1 image)
  a.png: 7 0.990
>>> p[0].get("top")[0].get("class")
'7'
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Sequence

from cnnlab.rundir import check_out_file

# why the cnnlab imports inside functions: `import cnnlab` reaches this package, and it must not load torch


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table_html(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    from cnnlab.explain.figures import pyplot

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


class Predictions(list):
    """One entry per image: ``{"image", "top": [{"class", "probability"}]}`` for a classifier, or
    ``{"image", "width", "height", "detections": [{"label", "score", "box"}]}`` for a detector."""

    def _line(self, item: dict) -> str:
        if "top" in item:
            return ", ".join(f"{t['class']} {t['probability']:.3f}" for t in item["top"])
        shown = ", ".join(f"{d['label']} {d['score']:.2f}" for d in item["detections"][:5])
        more = len(item["detections"]) - 5
        return f"{len(item['detections'])} detection(s)" + (f": {shown}" if shown else "") + (
            f", +{more} more" if more > 0 else "")

    def __repr__(self) -> str:
        lines = [f"Predictions({len(self)} image{'s' if len(self) != 1 else ''})"]
        lines += [f"  {item['image']}: {self._line(item)}" for item in self[:20]]
        if len(self) > 20:
            lines.append(f"  ... {len(self) - 20} more")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _table_html(["image", "prediction"], [(item["image"], self._line(item)) for item in self])


class Metrics(dict):
    """The numbers ``cnnlab eval --json`` prints, as a dict; the confusion matrix or PR curve in Jupyter."""

    def __repr__(self) -> str:
        if "test_accuracy" in self:
            head = f"Metrics(test_accuracy={self['test_accuracy']:.4f}, {self.get('count', '?')} images)"
        elif "map50" in self:
            head = f"Metrics(mAP@0.5={self['map50']:.4f}, mAP@[.5:.95]={self['map']:.4f}, {self.get('images')} images)"
        else:
            head = f"Metrics({', '.join(sorted(self))})"
        return head

    def _repr_html_(self) -> str:
        scalars = [(k, v) for k, v in self.items() if isinstance(v, (int, float, str)) and not k.endswith("_png")]
        parts = [_table_html(["metric", "value"], scalars)]
        for key in ("confusion_png", "pr_curve_png"):
            if self.get(key) and Path(self[key]).is_file():
                parts.append(_png_tag(Path(self[key]).read_bytes(), key))
        return "".join(parts)


class Explanation:
    """Attribution maps (N, H, W) for ``images`` (N, C, H, W uint8) by ``method``; ``.figure()`` draws them."""

    def __init__(self, method: str, maps, images_uint8, names: list[str], targets: list[str], signed: bool):
        self.method = method
        self.maps = maps  # (N, H, W) float tensor, one map per image
        self.images = images_uint8
        self.names = names
        self.targets = targets
        self.signed = signed

    def __repr__(self) -> str:
        n, h, w = self.maps.shape
        return f"Explanation({self.method}, {n} map(s) of {h}x{w}, targets {', '.join(self.targets)})"

    def figure(self, mode: str = "overlay"):
        """A matplotlib figure: a column per image, the input above its map (``mode``: overlay, heatmap, masked)."""
        from cnnlab.explain.figures import draw_map, pyplot, show_image

        plt = pyplot()
        n = len(self.maps)
        fig, axes = plt.subplots(2, n, figsize=(2.0 * n + 0.2, 4.2), squeeze=False)
        for i in range(n):
            show_image(axes[0, i], self.images[i])
            axes[0, i].set_title(f"{Path(self.names[i]).name}\n-> {self.targets[i]}", fontsize=7)
            axes[0, i].axis("off")
            draw_map(axes[1, i], self.images[i], self.maps[i], self.signed, mode)
        fig.suptitle(self.method.replace("_", " "), fontsize=9)
        fig.tight_layout()
        return fig

    def save(self, path: str | Path, mode: str = "overlay", overwrite: bool = False) -> Path:
        """Write the figure as a marked PNG under the one output policy (``overwrite`` replaces only
        a PNG an explanation wrote)."""
        from cnnlab.explain.figures import save
        path = check_out_file(path, overwrite, kind="explain", suffixes=(".png",), flag="path")
        return save(self.figure(mode), path)

    def _repr_png_(self) -> bytes:
        return figure_png(self.figure())


class TableResult(dict):
    """A sweep, ablation, cross-validation or ensemble summary (the command's ``summary.json``) with a table."""

    def __init__(self, kind: str, summary: dict, rows: list[dict], plot: Path | None = None):
        super().__init__(summary)
        self.kind = kind
        self.rows = rows
        self.plot = plot

    def table(self):
        """The rows as a ``pandas.DataFrame`` when pandas is installed, else the list of dicts."""
        try:
            import pandas as pd
        except ImportError:
            return list(self.rows)
        return pd.DataFrame(self.rows)

    def __repr__(self) -> str:
        header = list(self.rows[0]) if self.rows else []
        lines = [f"{self.kind.capitalize()}Result({len(self.rows)} row(s))"]
        for row in self.rows[:20]:
            lines.append("  " + "  ".join(f"{k}={_short(row[k])}" for k in header))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        header = list(self.rows[0]) if self.rows else []
        parts = [_table_html(header, [[_short(r.get(k)) for k in header] for r in self.rows])]
        if self.plot is not None and Path(self.plot).is_file():
            parts.append(_png_tag(Path(self.plot).read_bytes(), f"{self.kind} plot"))
        return "".join(parts)


def _short(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
