"""A video through a model: decode (background thread) -> batches -> classify/detect -> track -> count -> draw.

>>> for record in predict_video("runs/scenes", "clip.mp4", track=True):  # doctest: +SKIP
...     print(record["frame"], [(b["class"], b.get("track")) for b in record["boxes"]])
0 [('7', None), ('3', None)]
1 [('7', 1), ('3', 2)]

One record per processed frame: ``frame`` (0-based index in the video), ``time`` (seconds),
then ``boxes`` (``class``, ``score``, ``box`` x1, y1, x2, y2 in the frame's pixels, ``track``
when tracked) for a detector, or ``top`` (``class``, ``probability``) for a classifier.
:class:`VideoJob` gives more: every decoded frame with its drawn picture (for writing a
video), and a summary (frames, frames/s, tracks, counts) once the iteration ends.

With ``every=N`` only every N-th frame is run through the model; when frames are drawn, the
frames in between are drawn with the latest results, so the written video keeps every frame.
With ``track=True`` the detector runs at the tracker's ``low_score`` (ByteTrack's second
association needs the weak detections); a record lists the tracked detections and the
untracked ones that reach ``score_threshold`` (default 0.25, as ``predict``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.video.count import LineCounter, RegionCounter, parse_line, parse_region
from cnnlab.video.draw import annotate
from cnnlab.video.io import Decoder, Frame, VideoInfo, check_memory, decode_batches, probe
from cnnlab.video.track import Tracker, TrackerConfig

# why the cnnlab imports inside functions: an ONNX classifier runs on video without torch; they load it

MAX_BATCH = 1024


@dataclass
class VideoOptions:
    every: int = 1
    start: float = 0.0
    duration: float | None = None
    batch: int = 8
    track: bool = False
    count_lines: list[str] = field(default_factory=list)  # "x1,y1,x2,y2" each
    count_regions: list[str] = field(default_factory=list)  # "x1,y1,x2,y2,x3,y3,..." each
    fps: float | None = None  # a folder of frames only
    score_threshold: float | None = None
    tracker: TrackerConfig | None = None  # the tracker's thresholds (None: TrackerConfig's defaults)

    def check(self) -> "VideoOptions":
        import math

        if not isinstance(self.every, int) or self.every < 1:
            raise CnnlabError(f"--every {self.every} must be at least 1 (1 runs the model on every frame)")
        if not 1 <= self.batch <= MAX_BATCH:
            raise CnnlabError(f"--batch {self.batch} is out of range; expected 1 to {MAX_BATCH}")
        if not (math.isfinite(self.start) and self.start >= 0):
            raise CnnlabError(f"--start {self.start} must be a number of seconds >= 0")
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration > 0):
            raise CnnlabError(f"--duration {self.duration} must be a number of seconds > 0")
        if (self.count_lines or self.count_regions) and not self.track:
            raise CnnlabError("--count-line and --count-region count tracks: add --track")
        if self.tracker is not None and not self.track:
            raise CnnlabError("--tracker sets the tracker's options: add --track")
        if self.tracker is not None:
            self.tracker.check()
        return self


@dataclass(frozen=True)
class Picture:
    """A frame to be drawn: the frame and what goes on it, as they were when it was decoded.

    Calling it (or ``np.asarray(picture)``) draws it (:func:`cnnlab.video.draw.annotate`).
    :class:`cnnlab.video.io.VideoWriter` calls it in its encoding thread, so the drawing
    overlaps inference instead of following it in the model's thread.
    """

    rgb: np.ndarray
    record: dict | None
    lines: list
    regions: list
    counts: list[str]

    def __call__(self) -> np.ndarray:
        return annotate(self.rgb, self.record, self.lines, self.regions, self.counts)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self()
        return out if dtype is None else out.astype(dtype)


class VideoJob:
    """One video through one model. Iterate :meth:`frames` (or :meth:`records`); then read :attr:`summary`."""

    def __init__(self, model, video, options: VideoOptions | None = None, draw: bool = False) -> None:
        self.options = (options or VideoOptions()).check()
        self.model = model
        if self.options.track and not model.tracks:
            raise CnnlabError("--track needs a detection run (its boxes are what a tracker links); this model "
                              "predicts classes")
        self.info: VideoInfo = probe(video, self.options.fps)
        w, h = self.info.width, self.info.height
        self.lines = [LineCounter(parse_line(t, w, h)) for t in self.options.count_lines]
        self.regions = [RegionCounter(parse_region(t, w, h)) for t in self.options.count_regions]
        self.draw = draw
        self.tracker = None
        if self.options.track:
            self.tracker = Tracker(self.options.tracker)
        threshold = self.options.score_threshold
        self.list_score = 0.25 if threshold is None else threshold
        self.decoder = Decoder(self.info, self.options.start, self.options.duration,
                               1 if draw else self.options.every)
        self.processed = 0
        self.seconds = 0.0
        self.summary: dict = {}

    # ------------------------------------------------------------------ per batch

    def _track(self, record: dict) -> dict:
        boxes = record["boxes"]
        arr = np.array([b["box"] for b in boxes], dtype=float).reshape(-1, 4)
        scores = np.array([b["score"] for b in boxes], dtype=float)
        matched = self.tracker.update(arr, scores, [b["class"] for b in boxes])
        ids = {t.detection: t for t in matched}
        kept = []
        for i, b in enumerate(boxes):
            if i in ids:
                kept.append({**b, "track": ids[i].track_id, "track_class": ids[i].cls})
            elif b["score"] >= self.list_score:
                kept.append(b)
        centres = [(t.track_id, (float(t.box[0] + t.box[2]) / 2, float(t.box[1] + t.box[3]) / 2), t.cls)
                   for t in matched]
        for counter in (*self.lines, *self.regions):
            counter.update(centres)
        for b in kept:
            b.pop("track_class", None)
        return {**record, "boxes": kept}

    def count_texts(self) -> list[str]:
        texts = []
        for i, c in enumerate(self.lines, 1):
            right, left = sum(c.by_direction["to_right"].values()), sum(c.by_direction["to_left"].values())
            texts.append(f"line {i}: {right} to_right, {left} to_left")
        texts += [f"region {i}: {sum(c.entered.values())} entered" for i, c in enumerate(self.regions, 1)]
        return texts

    def frames(self) -> Iterator[tuple[Frame, dict | None, np.ndarray | None]]:
        """(frame, record or None when not processed, :class:`Picture` to draw or None) for every decoded frame."""
        every = self.options.every
        started = time.perf_counter()
        latest: dict | None = None
        first: int | None = None
        for batch in decode_batches(self.info, self.options.batch, decoder=self.decoder):
            first = batch[0].index if first is None else first
            chosen = [f for f in batch if (f.index - first) % every == 0]
            results = self.model([f.rgb for f in chosen]) if chosen else []
            by_index = {}
            for f, result in zip(chosen, results):
                record = {"frame": f.index, "time": f.time, **result}
                if self.tracker is not None:
                    record = self._track(record)
                by_index[f.index] = record
            for f in batch:
                record = by_index.get(f.index)
                if record is not None:
                    self.processed += 1
                    latest = record
                picture = None
                if self.draw:  # drawn later, where it is used (VideoWriter draws in its encoding thread)
                    picture = Picture(f.rgb, latest, [c.line for c in self.lines], [c.polygon for c in self.regions],
                                      self.count_texts())
                yield f, record, picture
        self.seconds = time.perf_counter() - started
        self._finish()

    def records(self) -> Iterator[dict]:
        for _, record, _ in self.frames():
            if record is not None:
                yield record

    def counts(self) -> dict:
        return {"lines": [c.counts() for c in self.lines], "regions": [c.counts() for c in self.regions]}

    def _finish(self) -> None:
        if self.decoder.decoded == 0:
            why = f": {self.decoder.error}" if self.decoder.error else ""
            raise CnnlabError(f"no frame of {self.info.path} could be decoded{why}"
                              if not (self.options.start or self.options.duration) or self.decoder.error else
                              f"{self.info.path} has no frame in the chosen --start/--duration")
        info = self.info
        self.summary = {
            "summary": True, "video": str(info.path), "task": self.model.kind, "width": info.width,
            "height": info.height, "fps": round(float(info.rate), 4), "frames_in_header": info.frames,
            "frames_decoded": self.decoder.decoded, "frames_processed": self.processed,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.decoder.decoded / self.seconds, 2) if self.seconds > 0 else None,
            "stopped_early": self.decoder.error,
        }
        if self.tracker is not None:
            self.summary["tracks"] = self.tracker.next_id - 1
            self.summary["tracker"] = asdict(self.tracker.config)  # the thresholds these ids came from
        if self.lines or self.regions:
            self.summary["counts"] = self.counts()


def predict_video(source, video, *, k: int = 3, score_threshold: float | None = None,
                  iou_threshold: float | None = None, max_detections: int | None = None, **options) -> Iterator[dict]:
    """One record per processed frame of ``video`` (a file or a folder of numbered frames) by a run or ``.onnx``.

    ``options`` are :class:`VideoOptions` fields (``every``, ``start``, ``duration``, ``batch``,
    ``track``, ``count_lines``, ``count_regions``, ``fps``).
    """
    job = open_job(source, video, k=k, score_threshold=score_threshold, iou_threshold=iou_threshold,
                   max_detections=max_detections, **options)
    yield from job.records()


def open_job(source, video, *, k: int = 3, score_threshold: float | None = None, iou_threshold: float | None = None,
             max_detections: int | None = None, draw: bool = False, **options) -> VideoJob:
    """Check the options and the video's header, then load the model: a :class:`VideoJob` ready to iterate."""
    from cnnlab.video.models import frame_reader, load_frame_model
    opts = VideoOptions(score_threshold=score_threshold, **options).check()
    onnx = str(source).endswith(".onnx")  # ONNX Runtime alone: this path never imports torch (nor cnnlab.detect)
    if not onnx:
        from cnnlab.detect.runs import check_threshold

        check_threshold("--score-threshold", score_threshold)
    info = probe(video, opts.fps)  # the video's problems are found before the model loads
    check_memory(info, opts.batch)
    for text in opts.count_lines:
        parse_line(text, info.width, info.height)
    for text in opts.count_regions:
        parse_region(text, info.width, info.height)
    reader = frame_reader(source)  # the run's task: whether its predictions are boxes a tracker can link
    if opts.track and not reader.tracks:
        raise CnnlabError(f"--track needs a detection run (its boxes are what a tracker links); {source} is "
                          f"{reader.run_kind}")
    detect_score = score_threshold
    if opts.track:  # ByteTrack's second association needs the weak detections too
        low = (opts.tracker or TrackerConfig()).low_score
        detect_score = low if score_threshold is None else min(score_threshold, low)
    model = load_frame_model(str(source), k=k, score_threshold=detect_score, iou_threshold=iou_threshold,
                             max_detections=max_detections)
    return VideoJob(model, video, opts, draw=draw)
