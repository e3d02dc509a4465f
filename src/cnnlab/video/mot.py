"""Tracks in MOTChallenge's text format, and their scores against a ground truth (motmetrics).

One line per box: ``frame,id,left,top,width,height,conf,x,y,z`` with 1-based frames and
1-based pixel coordinates (the MOT15 2-D layout: the top-left pixel is (1, 1); ``x,y,z`` are
``-1``). cnnlab's boxes are 0-based, so ``left = x1 + 1`` on writing, and motmetrics' reader
takes the 1 off again. Scores are motmetrics' CLEAR-MOT and identity metrics:
MOTA (1 - (misses + false positives + identity switches) / true boxes), IDF1 (the F1 of boxes
given the right identity), identity switches, fragmentations, precision and recall, with a
tracked box matching a true box at IoU >= 0.5.

>>> rows = [(1, 1, [0, 0, 10, 10], 1.0), (2, 1, [2, 0, 12, 10], 1.0)]
>>> print(mot_lines(rows), end="")
1,1,1.00,1.00,10.00,10.00,1.00,-1,-1,-1
2,1,3.00,1.00,10.00,10.00,1.00,-1,-1,-1
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.video.track import iou_matrix

MATCH_IOU = 0.5  # a tracked box counts for a true box at IoU >= this
MIN_VISIBILITY = 0.25  # true boxes less visible than this are ignored (make-video's MIN_VISIBLE)


def mot_lines(rows) -> str:
    """``(frame 1-based, track id, [x1, y1, x2, y2], score[, visibility])`` rows -> MOTChallenge text.

    A row with a visibility is a ground-truth row in the MOT16/17 layout (``...,1,1,visibility``:
    considered, class 1, the visible fraction); without, the MOT15 tracker layout (``...,-1,-1,-1``).
    """
    out = io.StringIO()
    for frame, track, (x1, y1, x2, y2), score, *visibility in rows:
        tail = f"1,{visibility[0]:.4f}" if visibility else "-1,-1,-1"
        out.write(f"{frame},{track},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.2f},{tail}\n")
    return out.getvalue()


def records_to_rows(records) -> list[tuple]:
    """Tracked boxes of :func:`cnnlab.video.pipeline.predict_video` records -> MOT rows (frames 1-based)."""
    return [(r["frame"] + 1, b["track"], b["box"], b["score"]) for r in records for b in r.get("boxes", [])
            if "track" in b]


def _load(path_or_text, name: str):
    import warnings

    import motmetrics as mm

    try:
        with warnings.catch_warnings():  # motmetrics 1.4 on pandas 3: a deprecation notice per call
            warnings.simplefilter("ignore")
            return mm.io.loadtxt(path_or_text, fmt="mot15-2D", min_confidence=-1)
    except Exception as exc:  # noqa: BLE001 -- pandas raises many types for a broken file
        raise CnnlabError(f"cannot read {name} as MOTChallenge text (frame,id,left,top,width,height,...): "
                          f"{' '.join(str(exc).split())[:160]}") from None


def score_tracks(gt_path: str | os.PathLike, rows, min_visibility: float = MIN_VISIBILITY) -> dict:
    """MOTA, IDF1, identity switches (and more) of tracked ``rows`` against the MOTChallenge file ``gt_path``.

    The ground truth is read by motmetrics; each frame's distances (``1 - IoU``, no match below
    IoU :data:`MATCH_IOU`) are computed here with the tracker's IoU (motmetrics 1.4's own IoU
    helper calls ``np.asfarray``, which NumPy 2 removed) and fed to its accumulator.

    A true box whose visibility column is below ``min_visibility`` is *ignored*: it is not an
    object to find, and a tracked box matched to it (Hungarian, IoU >= :data:`MATCH_IOU`) is
    removed before scoring rather than counted as a false positive -- how MOTChallenge's
    evaluation (TrackEval) treats its distractor classes. ``ignored_boxes`` counts the tracked
    boxes removed so. A file without visibilities (``-1``) ignores nothing; ``min_visibility=0``
    counts every true box.
    """
    import motmetrics as mm
    import numpy as np

    gt_path = Path(gt_path)
    if not gt_path.is_file():
        raise CnnlabError(f"ground truth {gt_path} does not exist (MOTChallenge text, e.g. DIR/gt/gt.txt)")
    gt = _load(str(gt_path), str(gt_path))
    if len(gt) == 0:
        raise CnnlabError(f"ground truth {gt_path} holds no boxes")
    if not 0 <= min_visibility <= 1:
        raise CnnlabError(f"min_visibility {min_visibility} is out of range; expected 0 to 1")
    truth: dict[int, tuple[list, list]] = {}
    ignored: dict[int, list] = {}
    visibility = gt["Visibility"].to_numpy(float)
    for (frame, oid), row, vis in zip(gt.index, gt[["X", "Y", "Width", "Height"]].to_numpy(float), visibility):
        box = [row[0], row[1], row[0] + row[2], row[1] + row[3]]
        if 0 <= vis < min_visibility:
            ignored.setdefault(int(frame), []).append(box)
            continue
        ids, boxes = truth.setdefault(int(frame), ([], []))
        ids.append(int(oid))
        boxes.append(box)
    tracked: dict[int, tuple[list, list]] = {}
    for frame, track, box, _ in rows:
        ids, boxes = tracked.setdefault(int(frame), ([], []))
        ids.append(int(track))
        boxes.append([float(v) for v in box])
    acc = mm.MOTAccumulator(auto_id=False)
    dropped = 0
    for frame in sorted(set(truth) | set(tracked)):
        oids, oboxes = truth.get(frame, ([], []))
        hids, hboxes = tracked.get(frame, ([], []))
        if ignored.get(frame) and hboxes:
            keep = _not_on_ignored(oboxes, ignored[frame], hboxes)
            dropped += len(hboxes) - len(keep)
            hids, hboxes = [hids[k] for k in keep], [hboxes[k] for k in keep]
        iou = iou_matrix(np.array(oboxes, float).reshape(-1, 4), np.array(hboxes, float).reshape(-1, 4))
        acc.update(oids, hids, np.where(iou >= MATCH_IOU, 1.0 - iou, np.nan), frameid=frame)
    names = ["mota", "motp", "idf1", "idp", "idr", "num_switches", "num_fragmentations", "precision", "recall",
             "num_false_positives", "num_misses", "num_objects", "num_unique_objects", "mostly_tracked"]
    frame = mm.metrics.create().compute(acc, metrics=names, name="video")
    out = {}
    for key in names:
        value = float(frame[key].iloc[0])
        out[key] = int(value) if key.startswith(("num_", "mostly")) else round(value, 4)
    out["motp_iou"] = round(1 - out.pop("motp"), 4)  # motmetrics reports the mean distance 1 - IoU
    out["min_visibility"], out["ignored_boxes"] = min_visibility, dropped
    return out


def _not_on_ignored(counted: list, ignored: list, tracked: list) -> list[int]:
    """Indices of ``tracked`` boxes not matched to an ``ignored`` one when every true box competes for them."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    truth = np.array(counted + ignored, float).reshape(-1, 4)
    iou = iou_matrix(truth, np.array(tracked, float).reshape(-1, 4))
    rows, cols = linear_sum_assignment(-np.where(iou >= MATCH_IOU, iou, 0.0))
    drop = {int(c) for r, c in zip(rows, cols) if r >= len(counted) and iou[r, c] >= MATCH_IOU}
    return [k for k in range(len(tracked)) if k not in drop]
