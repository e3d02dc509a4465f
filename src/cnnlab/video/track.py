"""Multi-object tracking by detection: a small ByteTrack-style tracker (SORT's Kalman + Hungarian, two passes).

Each frame's detections (boxes, scores, classes) are linked to the tracks of earlier frames:

0. **One box per object.** The detector's NMS is per class, so one object can come as two
   boxes of two classes (a 7 that looks a bit like a 1). Before association a detection that
   overlaps a better-scoring one by IoU >= ``dedupe_iou`` is dropped, whatever its class.
1. **Predict.** Every track's box moves by its constant-velocity Kalman filter (state: centre
   x, y, width, height and their velocities; noise proportional to the box size, so a big box
   may move more pixels than a small one).
2. **First association.** Detections scoring at least ``high_score`` are matched to all live
   tracks by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on the cost
   ``1 - IoU(predicted box, detection)``; a pair with IoU below ``match_iou`` is never matched.
3. **Second association (ByteTrack's idea).** Detections scoring in ``[low_score, high_score)``
   -- often an object that is partly hidden or blurred -- are matched, with the same cost, to
   the tracks seen in the previous frame that are still unmatched. A low-score detection never
   starts a track, so clutter does not become tracks.
4. **Birth.** An unmatched high-score detection starts a *tentative* track. It becomes
   *confirmed* and gets the next id once it has been matched in ``min_hits`` frames in a row
   (default 2: a one-frame false positive never gets an id); a tentative track missed once dies.
5. **Death.** A confirmed track that is missed is kept for ``max_age`` processed frames,
   coasting on its prediction, so an object hidden for a few frames keeps its id when it
   reappears where its motion says; after ``max_age`` misses it is removed, and an object that
   appears later is a new track with a new id.

A track's class is the most frequent class among its matched detections (ties: the latest),
so one misclassified frame does not change what is counted.

>>> tracker = Tracker()
>>> for x in (10, 14, 18):
...     out = tracker.update(np.array([[x, 10, x + 20, 30.]]), np.array([0.9]), ["7"])
>>> [(t.track_id, t.cls) for t in out]
[(1, '7')]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

import numpy as np

from cnnlab.errors import CnnlabError, did_you_mean, short_repr


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas of boxes (N, 4) x1, y1, x2, y2 -> (N,); an inverted box has area 0.

    >>> box_areas(np.array([[0, 0, 2, 3.], [5, 5, 4, 6.]])).tolist()
    [6.0, 0.0]
    """
    return np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(-1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4) -> (N, M); boxes x1, y1, x2, y2.

    >>> iou_matrix(np.array([[0, 0, 2, 2.]]), np.array([[1, 0, 3, 2.], [5, 5, 6, 6.]])).round(3).tolist()
    [[0.333, 0.0]]
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)  # (N, M)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def dedupe(overlaps: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the detections kept by class-agnostic greedy NMS at ``iou``, best first.

    ``overlaps`` is the detections' IoU with each other (D, D), :func:`iou_matrix` of the boxes.

    >>> boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30.]])
    >>> dedupe(iou_matrix(boxes, boxes), np.array([0.6, 0.9, 0.5]), 0.7).tolist()
    [1, 2]
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    for i in order:
        if all(overlaps[i, j] < iou for j in keep):
            keep.append(int(i))
    return np.array(keep, dtype=int)


def fused_scores(overlaps: np.ndarray, scores: np.ndarray, keep: np.ndarray, iou: float) -> np.ndarray:
    """``scores`` with each kept box's score raised to the sum (at most 1) of the boxes it absorbed at ``iou``.

    Per-class NMS leaves one box per class on an object whose class is unclear; each box's score
    is then the object's confidence times one class's share, and none may reach the tracker's
    thresholds although the object is certain. Each dropped box is counted once, towards the best kept
    box it overlaps. ``overlaps`` (D, D) and ``keep`` are :func:`dedupe`'s input and output.

    >>> boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11.]])
    >>> fused_scores(iou_matrix(boxes, boxes), np.array([0.3, 0.25]), np.array([0]), 0.7).tolist()
    [0.55, 0.25]
    """
    out = scores.astype(float).copy()
    dropped = np.setdiff1d(np.arange(len(scores)), keep)
    if len(dropped) == 0:
        return out
    for d in dropped:
        near = np.flatnonzero(overlaps[d, keep] >= iou)  # positions in keep
        if len(near):
            k = keep[near[np.argmax(scores[keep[near]])]]
            out[k] = min(1.0, out[k] + scores[d])
    return out


def match(cost_iou: np.ndarray, min_iou: float, penalty: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(row, column) pairs of the Hungarian assignment on ``1 - IoU (+ penalty)``, keeping pairs with IoU >= ``min_iou``.

    >>> match(np.array([[0.6, 0.5]]), 0.2), match(np.array([[0.6, 0.5]]), 0.2, np.array([[0.3, 0.0]]))
    ([(0, 0)], [(0, 1)])
    """
    from scipy.optimize import linear_sum_assignment

    if cost_iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(1.0 - cost_iou + (0.0 if penalty is None else penalty))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost_iou[r, c] >= min_iou]


def buffered(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """Boxes grown by ``buffer`` x their width (height) on each side, the centre kept (C-BIoU's buffered boxes).

    >>> buffered(np.array([[10, 10, 20, 30.]]), 0.5).tolist()
    [[5.0, 0.0, 25.0, 40.0]]
    """
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    grow = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1) * buffer * np.array([-1, -1, 1, 1])
    return boxes + grow


class KalmanBox:
    """Constant-velocity Kalman filter on (cx, cy, w, h); noise scales with the box's height (ByteTrack's choice).

    >>> kf = KalmanBox(np.array([0, 0, 10, 10.]))
    >>> for x in range(2, 22, 2):  # a box moving 2 px a frame, ten frames
    ...     _ = kf.predict(); kf.update(np.array([x, 0, x + 10, 10.]))
    >>> kf.predict().round(0).tolist()  # the next box continues the motion (the true one is at 22)
    [22.0, 0.0, 32.0, 10.0]
    """

    POS_NOISE = 1 / 20  # standard deviation of position, per unit of box height
    VEL_NOISE = 1 / 160  # standard deviation of velocity, per unit of box height

    def __init__(self, box: np.ndarray) -> None:
        self.x = np.zeros(8)
        self.x[:4] = self._measure(box)
        h = max(self.x[3], 1.0)
        std = np.array([2 * self.POS_NOISE * h] * 4 + [10 * self.VEL_NOISE * h] * 4)
        self.P = np.diag(std ** 2)
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)  # x += v per frame
        self.H = np.eye(4, 8)

    @staticmethod
    def _measure(box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = box
        return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])

    def box(self) -> np.ndarray:
        cx, cy, w, h = self.x[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def predict(self) -> np.ndarray:
        h = max(self.x[3], 1.0)
        q = np.array([self.POS_NOISE * h] * 4 + [self.VEL_NOISE * h] * 4) ** 2
        self.x = self.F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1e-3)  # a box never shrinks below nothing
        self.P = self.F @ self.P @ self.F.T + np.diag(q)
        return self.box()

    def update(self, box: np.ndarray) -> None:
        h = max(self.x[3], 1.0)
        r = np.diag(np.array([self.POS_NOISE * h] * 4) ** 2)
        s = self.H @ self.P @ self.H.T + r  # (4, 4) innovation covariance
        gain = self.P @ self.H.T @ np.linalg.inv(s)  # (8, 4)
        self.x = self.x + gain @ (self._measure(box) - self.H @ self.x)
        self.P = (np.eye(8) - gain @ self.H) @ self.P


@dataclass
class Track:
    """One object followed over frames. ``track_id`` is 0 while tentative, then 1, 2, ... in order of confirmation."""

    kf: KalmanBox
    box: np.ndarray  # the latest matched (or, while missed, predicted) box
    score: float
    classes: Counter = field(default_factory=Counter)
    last_class: str = ""
    track_id: int = 0
    hits: int = 1  # frames matched in a row
    misses: int = 0  # processed frames since the last match
    detection: int | None = None  # index of this frame's matched detection, None when missed
    area: float = 0.0  # the usual box area: a running mean over the matches that were not partial

    @property
    def cls(self) -> str:
        best = max(self.classes.values())
        return self.last_class if self.classes[self.last_class] == best else self.classes.most_common(1)[0][0]

    @property
    def confirmed(self) -> bool:
        return self.track_id > 0


@dataclass
class TrackerConfig:
    high_score: float = 0.4  # detections at least this take part in the first association and may start tracks
    low_score: float = 0.2  # detections in [low_score, high_score) only extend existing tracks
    match_iou: float = 0.2  # a detection and a predicted box closer than this IoU are never matched
    min_hits: int = 2  # frames in a row a new track must be matched to get an id
    max_age: int = 30  # processed frames a confirmed track survives unmatched
    dedupe_iou: float = 0.5  # a detection overlapping a better one this much is the same object
    class_penalty: float = 0.0  # added to the cost 1 - IoU when a detection's class is not its track's
    buffer: float = 0.3  # > 0: a third association on boxes grown by this x their size (lost tracks' way back)
    partial_area: float = 0.0  # > 0: a match this much smaller than the track's usual box only keeps it alive
    fuse_scores: int = 1  # 1: a kept box scores the sum of the boxes it stands for (the classes' shares of one object)
    birth_iou: float = 0.3  # < 1: no track is born on a detection overlapping a live track's box this much

    def check(self) -> "TrackerConfig":
        if not 0 <= self.low_score <= self.high_score <= 1:
            raise CnnlabError(f"tracker scores must satisfy 0 <= low_score ({self.low_score}) <= high_score "
                              f"({self.high_score}) <= 1")
        if not 0 < self.dedupe_iou <= 1:
            raise CnnlabError(f"tracker dedupe_iou {self.dedupe_iou} is out of range; expected (0, 1]")
        if not 0 < self.match_iou <= 1:
            raise CnnlabError(f"tracker match_iou {self.match_iou} is out of range; expected (0, 1]")
        if self.class_penalty < 0 or not 0 <= self.buffer <= 2:
            raise CnnlabError(f"tracker class_penalty {self.class_penalty} must be >= 0 and buffer {self.buffer} "
                              "in [0, 2]")
        if not 0 <= self.partial_area < 1:
            raise CnnlabError(f"tracker partial_area {self.partial_area} is out of range; expected [0, 1)")
        if self.fuse_scores not in (0, 1):
            raise CnnlabError(f"tracker fuse_scores {self.fuse_scores} must be 0 or 1")
        if not 0 < self.birth_iou <= 1:
            raise CnnlabError(f"tracker birth_iou {self.birth_iou} is out of range; expected (0, 1]")
        if self.min_hits < 1 or self.max_age < 0:
            raise CnnlabError(f"tracker min_hits {self.min_hits} must be >= 1 and max_age {self.max_age} >= 0")
        return self


def parse_tracker_options(items) -> TrackerConfig:
    """``["high_score=0.6", "min_hits=3", ...]`` (``--tracker KEY=VALUE``) -> a checked :class:`TrackerConfig`.

    >>> parse_tracker_options(["min_hits=3", "buffer=0.5"]).min_hits
    3
    """
    kinds = {f.name: f.type for f in fields(TrackerConfig)}
    values: dict = {}
    for item in items or []:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise CnnlabError(f"--tracker {short_repr(item)} must be KEY=VALUE, e.g. --tracker min_hits=3")
        if key not in kinds:
            raise CnnlabError(f"--tracker: unknown option {short_repr(key)}; {did_you_mean(key, kinds)}")
        if key in values:
            raise CnnlabError(f"--tracker {key} is given twice")
        try:
            value = int(text) if kinds[key] in ("int", int) else float(text)
        except ValueError:
            kind = "an integer" if kinds[key] in ("int", int) else "a number"
            raise CnnlabError(f"--tracker {key}={short_repr(text)} must be {kind}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise CnnlabError(f"--tracker {key}={short_repr(text)} must be a finite number")
        values[key] = value
    return TrackerConfig(**values).check()


class Tracker:
    """Feed :meth:`update` each processed frame's detections in order; it returns the confirmed tracks matched now."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = (config or TrackerConfig()).check()
        self.tracks: list[Track] = []
        self.next_id = 1

    def _penalty(self, tracks, detections, classes: list[str]) -> np.ndarray | None:
        """``class_penalty`` where detection ``d``'s class is not track ``t``'s: (len(tracks), len(detections))."""
        if not self.config.class_penalty:
            return None
        names = [self.tracks[t].cls for t in tracks]
        return np.array([[self.config.class_penalty * (classes[int(d)] != n) for d in detections] for n in names],
                        dtype=float).reshape(len(names), len(detections))

    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: list[str]) -> list[Track]:
        """``boxes`` (D, 4) x1, y1, x2, y2; ``scores`` (D,); ``classes`` D names -> the confirmed tracks
        matched to a detection in this frame (each with ``detection``, the index of its detection)."""
        cfg = self.config
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        scores = np.asarray(scores, dtype=float).reshape(-1)
        predicted = np.array([t.kf.predict() for t in self.tracks]).reshape(-1, 4)  # (T, 4)
        for t in self.tracks:
            t.detection = None
        areas = box_areas(boxes)  # (D,)
        overlaps = iou_matrix(boxes, boxes)  # (D, D)
        kept = np.zeros(len(scores), dtype=bool)
        keep = dedupe(overlaps, scores, cfg.dedupe_iou)
        kept[keep] = True
        if cfg.fuse_scores and len(keep):
            scores = fused_scores(overlaps, scores, keep, cfg.dedupe_iou)
        high = np.flatnonzero(kept & (scores >= cfg.high_score))
        low = np.flatnonzero(kept & (scores >= cfg.low_score) & (scores < cfg.high_score))

        # First association: high-score detections against every live track.
        pairs = match(iou_matrix(predicted, boxes[high]), cfg.match_iou, self._penalty(range(len(self.tracks)),
                                                                                      high, classes))
        matched = [(r, int(high[c])) for r, c in pairs]
        # Second association: low-score detections against the tracks seen last frame and unmatched now.
        rest = [i for i, t in enumerate(self.tracks) if i not in {r for r, _ in matched} and t.misses == 0]
        pairs = match(iou_matrix(predicted[rest], boxes[low]), cfg.match_iou, self._penalty(rest, low, classes))
        matched += [(rest[r], int(low[c])) for r, c in pairs]
        if cfg.buffer > 0:  # third: what is left, on grown boxes (a partly hidden object's box jumps)
            rest = [i for i, t in enumerate(self.tracks) if i not in {r for r, _ in matched} and t.confirmed]
            left = np.array([d for d in high if int(d) not in {d for _, d in matched}], dtype=int)
            pairs = match(iou_matrix(buffered(predicted[rest], cfg.buffer), buffered(boxes[left], cfg.buffer)),
                          cfg.match_iou, self._penalty(rest, left, classes))
            matched += [(rest[r], int(left[c])) for r, c in pairs]

        used = set()
        for r, d in matched:
            t = self.tracks[r]
            area = float(areas[d])
            if not cfg.partial_area or area >= cfg.partial_area * t.area:
                t.kf.update(boxes[d])
                t.area = area if not t.area else 0.9 * t.area + 0.1 * area  # slow: a hiding box drops below it
            t.box, t.score, t.detection = boxes[d].copy(), float(scores[d]), d
            t.classes[classes[d]] += 1
            t.last_class = classes[d]
            t.hits, t.misses = t.hits + 1, 0
            if not t.confirmed and t.hits >= cfg.min_hits:
                t.track_id, self.next_id = self.next_id, self.next_id + 1
            used.add(d)
        survivors = []
        for i, t in enumerate(self.tracks):
            if t.detection is None:
                t.misses += 1
                t.hits = 0
                t.box = predicted[i]
                if not t.confirmed or t.misses > cfg.max_age:
                    continue  # a tentative track missed once, or a confirmed one missed too long, dies
            survivors.append(t)
        live = np.array([t.box for t in survivors]).reshape(-1, 4)
        near_live = iou_matrix(boxes[high], live).max(1, initial=0.0) if cfg.birth_iou < 1 else np.zeros(len(high))
        for d, near in zip(high, near_live):  # birth: unmatched high-score detections not on a live track
            if int(d) not in used and not (cfg.birth_iou < 1 and near >= cfg.birth_iou):
                t = Track(KalmanBox(boxes[d]), boxes[d].copy(), float(scores[d]), Counter({classes[d]: 1}),
                          classes[d], detection=int(d), area=float(areas[d]))
                if cfg.min_hits <= 1:
                    t.track_id, self.next_id = self.next_id, self.next_id + 1
                survivors.append(t)
        self.tracks = survivors
        return [t for t in self.tracks if t.confirmed and t.detection is not None]
