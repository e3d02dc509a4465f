"""``Run``: one trained model (a run directory or an exported ONNX file) and what can be done with it.

Every method calls the same library code as the CLI command of the same name, so
``Run.evaluate()`` writes and returns what ``cnnlab eval RUN --json`` does, and
``Run.predict(path)`` returns what ``cnnlab predict RUN path --json`` lists.

>>> run = cnnlab.load("runs/mnist-fast")  # doctest: +SKIP
>>> run.predict("digit.png", k=2)  # doctest: +SKIP
Predictions(1 image)
  digit.png: 7 0.998, 1 0.001
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cnnlab.api.results import Explanation, Metrics, Predictions
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `import cnnlab` reaches this package, and it must not load torch


class Run:
    """A run directory written by ``cnnlab train`` (classification or detection), loaded lazily.

    ``config``, ``summary`` and ``history`` read the directory's files; the model is rebuilt from
    its checkpoint on first use (``weights_only=True``) and kept for later calls.
    """

    def __init__(self, path: str | os.PathLike):
        from cnnlab.runs import load_run_config
        from cnnlab.transfer.pretrained import is_pretrained_name

        self.path = Path(path)
        self._loaded = None
        self.pretrained = is_pretrained_name(str(path))  # efficientnet_lite0.in1k: weights, not a directory
        if self.pretrained:
            self.config = self._load().config
            return
        if not self.path.is_dir():
            raise CnnlabError(f"{self.path} is a file, not a run directory; cnnlab.load reads run directories "
                              "and .onnx files" if self.path.exists() else f"run directory {self.path} does not exist")
        self.config = load_run_config(self.path)  # a folder that is not a run is a one-line error here

    # ------------------------------------------------------------------ files of the run

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def reader(self):
        """How this run's task is read (:class:`cnnlab.tasks.reading.RunReader`)."""
        from cnnlab.tasks import get_reader

        return get_reader("classify" if self.pretrained else self.task)

    @property
    def summary(self) -> dict:
        """``summary.json`` (an empty dict while the run has none)."""
        path = self.path / "summary.json"
        try:
            value = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (UnicodeDecodeError, ValueError):
            raise CnnlabError(f"{path} is not JSON cnnlab wrote; train the run again") from None
        return value if isinstance(value, dict) else {}

    @property
    def history(self):
        """The epoch lines of ``metrics.jsonl``: a ``pandas.DataFrame`` if pandas is installed, else a list of dicts."""
        from cnnlab.report.curves import read_metrics

        path = self.path / "metrics.jsonl"
        _, epochs = read_metrics(path) if path.is_file() else ([], [])
        try:
            import pandas as pd
        except ImportError:
            return epochs
        return pd.DataFrame(epochs)

    def __repr__(self) -> str:
        s = self.summary
        if s.get("test_accuracy") is not None:
            score = f", test_accuracy={s['test_accuracy']:.4f}"
        elif s.get("test_map50") is not None:
            score = f", test_map50={s['test_map50']:.4f}"
        else:
            score = ""
        return (f"Run('{self.path}', model={self.config.model.name}, task={self.task}, "
                f"status={s.get('status', 'unknown')}{score})")

    # ------------------------------------------------------------------ the model

    @property
    def model(self):
        """The trained ``torch.nn.Module`` in eval mode on the CPU (detection: the detector)."""
        return self._load().model

    @property
    def classes(self) -> list[str]:
        return list(self._load().classes)

    def _load(self):
        if self._loaded is None:
            from cnnlab.runs import load_run

            self._loaded = load_run(str(self.path) if self.pretrained else self.path, task=None)
        return self._loaded

    def predict(self, images: Any, k: int = 3, **detect_options: Any) -> Predictions:
        """Top-``k`` classes (or, for a detection run, boxes) for each image.

        ``images``: a path, a folder, a PIL image, a NumPy array (H, W[, C]) or batch, a tensor
        (C, H, W) or (N, C, H, W) - uint8 or floats on [0, 1] - or a list of these.
        Detection runs take ``score_threshold``, ``iou_threshold`` and ``max_detections``.
        """
        from cnnlab.tasks import all_readers

        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise CnnlabError(f"k must be an integer of at least 1, got {k!r}")
        reader = self.reader
        if reader.predicts == "boxes":
            return Predictions(self._predict_boxes(images, reader, **detect_options))
        if detect_options:  # options only box predictors take, named by the readers that take them
            takers = [r.runs_name for r in all_readers() if set(detect_options) & set(r.options.get("predict", {}))]
            raise CnnlabError(f"options given ({', '.join(sorted(detect_options))}) apply to "
                              f"{' and '.join(takers) or 'no run'} only")
        return Predictions(_top_k(self._load(), images, k))

    def predict_video(self, video: str | os.PathLike, k: int = 3, **options: Any):
        """One record per processed frame of ``video`` (a file, or a folder of numbered frames), as
        ``cnnlab predict RUN VIDEO --json`` prints them: a generator, so a notebook can stop early.

        ``options``: ``every``, ``start``, ``duration``, ``batch``, ``track``, ``count_lines``,
        ``count_regions``, ``fps``, and for detection runs ``score_threshold``, ``iou_threshold``,
        ``max_detections`` (see :func:`cnnlab.video.pipeline.predict_video`). Needs ``cnnlab[video]``.
        """
        from cnnlab.video import predict_video

        return predict_video(str(self.path), os.fspath(video), k=k, **options)

    def _predict_boxes(self, images: Any, reader, **options: Any) -> list[dict]:
        import tempfile

        from cnnlab.api.images import items_as_files

        takes = [k for k in reader.options.get("predict", {}) if k not in ("out", "overwrite")]
        unknown = set(options) - set(takes)
        if unknown:
            raise CnnlabError(f"unknown option '{sorted(unknown)[0]}'; {reader.runs_name} take {', '.join(takes)}")
        with tempfile.TemporaryDirectory(prefix="cnnlab-api-") as tmp:
            # In-memory images are saved losslessly (PNG) so they take exactly the file path's letterboxing.
            files, names = items_as_files(images, Path(tmp))
            results = reader.predict(self.path, files, **options)
        for item, name in zip(results, names):
            item["image"] = name
        return results

    def evaluate(self, data_dir: str | None = None, tta: str | None = None, top: int | None = None, *,
                 folder: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                 overwrite: bool = False) -> Metrics:
        """Score the run's test split as ``cnnlab eval`` does (writes eval.json and its figures into the run).

        A pretrained model (``cnnlab.load("efficientnet_lite0.in1k")``) has no test split: it scores an image
        ``folder`` whose class folders are ImageNet WordNet ids and writes its report into ``out``
        (``cnnlab eval NAME --folder DIR --out DIR``).
        """
        if self.pretrained:
            from cnnlab.transfer.zeroshot import evaluate_pretrained

            if folder is None or out is None:
                raise CnnlabError(f"{self.path} is a pretrained model, not a run: give folder= (class folders named "
                                  "by ImageNet WordNet id) and out= for the report")
            return Metrics(evaluate_pretrained(str(self.path), folder, out, overwrite=overwrite,
                                               top=16 if top is None else top))
        if folder is not None or out is not None:
            raise CnnlabError("folder= and out= apply to pretrained models; a run is scored on its own test split")
        reader = self.reader  # the run's task: which of tta/top apply, and how its test split is scored
        options = reader.take_options("eval", {"tta": tta, "top": top}, self.path)
        return Metrics(reader.evaluate(self.path, data_dir=data_dir, **options))

    def explain(self, images: Any, method: str = "gradcam", target: str | int | None = None,
                layer: str | None = None, **options: Any) -> Explanation:
        """Attribution maps for ``images`` by ``method`` (any name of ``cnnlab explain --methods``).

        ``target``: a class name or index explained in every image (default: each image's prediction);
        ``layer``: the conv layer for layer methods (default: the last one); ``options``: the method's own.
        """
        from cnnlab.explain import get_method
        from cnnlab.explain.layers import get_layer, last_conv_layer
        from cnnlab.explain.workflow import class_index, model_inputs, predict_logits

        if not self.reader.explains:
            raise CnnlabError(f"explain works on runs with class scores; {self.reader.run_kind} has none to explain")
        run = self._load()
        attribution = get_method(method)
        if layer is not None and not attribution.uses_layer:
            raise CnnlabError(f"{method} takes no layer; layer applies to gradcam and guided_gradcam")
        if attribution.uses_layer:
            options["layer"] = layer or last_conv_layer(run.model, run.input_size)
            get_layer(run.model, options["layer"])  # an unknown name lists the conv layers
        from cnnlab.api.images import as_uint8_batch

        images_uint8, names = as_uint8_batch(images, run.input_size, run.config.data.resize,
                                             getattr(run, "pretrained_cfg", None))
        preds = predict_logits(run, images_uint8).argmax(1)
        targets = preds if target is None else preds.new_full(preds.shape, class_index(run, target, "target"))
        maps = attribution.attribute(run.model, model_inputs(run, images_uint8), targets, **options)
        return Explanation(method, maps, images_uint8, names, [run.classes[int(t)] for t in targets],
                           attribution.signed)

    def profile(self, input_size: tuple[int, int, int] | None = None, batch_size: int = 1):
        """Parameters, MACs and activation memory per layer (a :class:`cnnlab.profile.Profile`)."""
        from cnnlab.profile import profile_model

        run = self._load()
        return profile_model(run.model, tuple(input_size or run.input_size), batch_size=batch_size)

    def export(self, path: str | os.PathLike | None = None, format: str = "onnx", *, overwrite: bool = False,
               dynamic_batch: bool = False) -> dict:
        """Export the tested weights as ``cnnlab export`` does and return its record (with the parity check)."""
        from cnnlab.transfer.export import export_run

        if not self.reader.exports:
            raise CnnlabError(f"export does not apply to {self.reader.runs_name} "
                              f"({self.task} runs: {self.reader.read_commands})")
        return export_run(self.path, format, path, overwrite=overwrite, dynamic_batch=dynamic_batch)

    def report(self, out: str | os.PathLike | None = None, explain_count: int = 4, overwrite: bool = False) -> Path:
        """Write the run's one-page ``report.html`` (or ``out``) and return its path (``overwrite``: as the CLI's)."""
        from cnnlab.report.html import build_report

        return build_report(self.path, out=None if out is None else str(out), explain_count=explain_count,
                            overwrite=overwrite)


class OnnxRun:
    """An exported ``MODEL.onnx`` run with ONNX Runtime alone (torch is not needed): ``predict`` only."""

    def __init__(self, path: str | os.PathLike):
        from cnnlab.transfer.onnx_predict import open_model

        self.path = Path(path)
        self.session, self.meta = open_model(str(self.path))

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def __repr__(self) -> str:
        return f"OnnxRun('{self.path}', {len(self.classes)} classes, input {tuple(self.meta['input_size'])})"

    def predict(self, images: Any, k: int = 3) -> Predictions:
        """Top-``k`` classes per image, from image files or folders (as ``cnnlab predict MODEL.onnx``)."""
        from cnnlab.transfer.onnx_predict import predict_onnx

        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise CnnlabError(f"k must be an integer of at least 1, got {k!r}")
        paths = [images] if isinstance(images, (str, os.PathLike)) else images
        if not isinstance(paths, (list, tuple)) or not all(isinstance(p, (str, os.PathLike)) for p in paths):
            raise CnnlabError("an ONNX model predicts image files or folders; give paths (or load the run directory "
                              "to pass arrays or tensors)")
        return Predictions(predict_onnx(str(self.path), [os.fspath(p) for p in paths], k))


def _top_k(run, images: Any, k: int) -> list[dict]:
    """The classifier's top-``k`` for every image, decoded in chunks so a large folder does not fill memory."""
    import torch

    from cnnlab.api.images import decode_items, image_items
    from cnnlab.predict import CHUNK

    items = image_items(images)
    results = []
    with torch.no_grad():
        for start in range(0, len(items), CHUNK):
            chunk = items[start:start + CHUNK]
            images_uint8 = decode_items(chunk, run.input_size, run.config.data.resize,
                                        getattr(run, "pretrained_cfg", None))  # (n, C, H, W)
            logits = run.model(run.normalize(images_uint8.float() / 255.0))
            top = logits.softmax(1).topk(min(k, run.num_classes), dim=1)
            results.extend(
                {"image": name, "top": [{"class": run.classes[int(i)], "probability": round(float(p), 4)}
                                        for p, i in zip(values, indices)]}
                for (name, _), values, indices in zip(chunk, top.values, top.indices))
    return results
