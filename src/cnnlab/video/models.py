"""What runs on each batch of frames: a run's classifier or detector, or an exported ONNX classifier.

Every frame is prepared exactly as ``cnnlab predict`` prepares an image file (the same
functions: ``fit_image`` with the run's resize policy for a classifier, ``letterbox_pil`` for
a detector, the run's normalisation), so a frame gives the result its PNG would give. Runs are
loaded with :func:`cnnlab.runs.load_run`, the loader ``predict`` uses.

>>> model = load_frame_model("runs/scenes")  # doctest: +SKIP
>>> model.kind, model.classes[:3]  # doctest: +SKIP
('detect', ['0', '1', '2'])
>>> model([rgb_frame])[0]["boxes"][0]  # doctest: +SKIP
{'class': '7', 'score': 0.97, 'box': [12.0, 30.5, 40.2, 66.0]}
"""

from __future__ import annotations

import numpy as np

from cnnlab.data.folder import fit_image
from cnnlab.errors import CnnlabError
from cnnlab.transfer.onnx_predict import open_model

# why the cnnlab imports inside functions: an ONNX classifier runs on video without torch; they load it


def _pil(rgb: np.ndarray):
    from PIL import Image

    return Image.fromarray(rgb)  # (H, W, 3) uint8 RGB


class FrameClassifier:
    """A classification run (or ``.onnx`` export): frames -> ``{"top": [{"class", "probability"}, ...]}``."""

    kind = "classify"
    tracks = False  # top-k classes: nothing for a tracker to link

    def __init__(self, source: str, k: int = 3) -> None:
        if k < 1:
            raise CnnlabError(f"-k/--top-k {k} must be at least 1")
        self.k = k
        if str(source).endswith(".onnx"):
            self.session, meta = open_model(source)
            self.classes, self.input_size = meta["classes"], tuple(meta["input_size"])
            self.policy, self.run = meta.get("resize", "resize"), None
        else:
            from cnnlab.runs import load_run

            self.run = load_run(source)
            self.classes, self.input_size = self.run.classes, tuple(self.run.input_size)
            self.policy = self.run.config.data.resize
            if self.input_size[1] != self.input_size[2]:
                raise CnnlabError(f"the run's images are {self.input_size[1]}x{self.input_size[2]}; only square "
                                  "inputs are supported by predict")

    def prepare(self, frames: list[np.ndarray]) -> np.ndarray:
        c, size, _ = self.input_size
        return np.stack([fit_image(_pil(f), size, self.policy, "L" if c == 1 else "RGB") for f in frames])

    def __call__(self, frames: list[np.ndarray]) -> list[dict]:
        images = self.prepare(frames)  # (N, C, S, S) uint8
        if self.run is None:
            x = images.astype(np.float32) / np.float32(255.0)
            name = self.session.get_inputs()[0].name
            fixed = self.session.get_inputs()[0].shape[0]
            step = fixed if isinstance(fixed, int) and fixed > 0 else len(x)
            logits = np.concatenate([self.session.run(None, {name: x[i:i + step]})[0] for i in range(0, len(x), step)])
            z = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # (N, K) softmax
        else:
            import torch

            with torch.no_grad():
                logits = self.run.model(self.run.normalize(torch.from_numpy(images).float() / 255.0))
                probs = logits.softmax(1).numpy()
        out = []
        for row in probs:
            order = np.argsort(-row, kind="stable")[: min(self.k, len(self.classes))]
            out.append({"top": [{"class": self.classes[int(i)], "probability": round(float(row[i]), 4)}
                                for i in order]})
        return out


class FrameDetector:
    """A detection run: frames -> ``{"boxes": [{"class", "score", "box"}, ...]}`` in the frame's pixels, best first."""

    kind = "detect"
    tracks = True  # boxes: what a tracker links from frame to frame

    def __init__(self, source: str, score_threshold: float | None = None, iou_threshold: float | None = None,
                 max_detections: int | None = None) -> None:
        from cnnlab.detect.runs import PREDICT_SCORE, load_detection_run, prediction_options

        self.run = load_detection_run(source)  # cnnlab.runs.load_run, as predict does
        self.opts = prediction_options(self.run, PREDICT_SCORE if score_threshold is None else score_threshold,
                             iou_threshold, max_detections)
        self.classes, self.input_size = self.run.classes, tuple(self.run.input_size)
        self.points = self.run.model.points()

    @classmethod
    def from_run(cls, run, opts: dict) -> "FrameDetector":
        """A detector over an already loaded run (``cnnlab.runs.LoadedRun``) and NMS options (``bench video``)."""
        self = cls.__new__(cls)
        self.run, self.opts = run, dict(opts)
        self.classes, self.input_size = run.classes, tuple(run.input_size)
        self.points = run.model.points()
        return self

    def __call__(self, frames: list[np.ndarray]) -> list[dict]:
        import torch

        from cnnlab.data.detection import letterbox_pil
        from cnnlab.detect.postprocess import postprocess
        from cnnlab.detect.runs import to_original

        c, s, _ = self.input_size
        prepared = [letterbox_pil(_pil(f).convert("L" if c == 1 else "RGB"), s) for f in frames]
        x = torch.from_numpy(np.stack([p[0] for p in prepared]))  # (N, C, S, S) uint8
        with torch.no_grad():
            dets = postprocess(self.run.model(self.run.normalize(x.float() / 255.0)), self.points,
                               image_size=(s, s), **self.opts)
        out = []
        for frame, (_, scale, pad), det in zip(frames, prepared, dets):
            _, _, items = to_original(det, scale, pad, frame.shape[:2], self.classes)
            out.append({"boxes": [{"class": d["label"], "score": d["score"], "box": d["box"]} for d in items]})
        return out


def frame_reader(source: str):
    """The reader of ``source``'s task; an exported ``.onnx`` is a classifier (read without torch)."""
    from cnnlab.tasks import get_reader

    if str(source).endswith(".onnx"):
        return get_reader("classify")
    from cnnlab.runs import run_reader

    return run_reader(source)


def load_frame_model(source: str, *, k: int = 3, score_threshold: float | None = None,
                     iou_threshold: float | None = None, max_detections: int | None = None):
    """The frame model of ``source``'s task: a :class:`FrameDetector` for a detection run, a
    :class:`FrameClassifier` for a classification run or ``.onnx`` export (its reader builds it)."""
    reader = frame_reader(source)
    options = reader.take_options("video", {"score_threshold": score_threshold, "iou_threshold": iou_threshold,
                                            "max_detections": max_detections}, source)
    return reader.frame_model(str(source), k=k, **options)
