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


def mot_lines(rows) -> str:
    """``(frame 1-based, track id, [x1, y1, x2, y2], score)`` rows -> MOTChallenge text."""
    out = io.StringIO()
    for frame, track, (x1, y1, x2, y2), score in rows:
        out.write(f"{frame},{track},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.2f},-1,-1,-1\n")
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


def score_tracks(gt_path: str | os.PathLike, rows) -> dict:
    """MOTA, IDF1, identity switches (and more) of tracked ``rows`` against the MOTChallenge file ``gt_path``.

    The ground truth is read by motmetrics; each frame's distances (``1 - IoU``, no match below
    IoU :data:`MATCH_IOU`) are computed here with the tracker's IoU (motmetrics 1.4's own IoU
    helper calls ``np.asfarray``, which NumPy 2 removed) and fed to its accumulator.
    """
    import motmetrics as mm
    import numpy as np

    gt_path = Path(gt_path)
    if not gt_path.is_file():
        raise CnnlabError(f"ground truth {gt_path} does not exist (MOTChallenge text, e.g. DIR/gt/gt.txt)")
    gt = _load(str(gt_path), str(gt_path))
    if len(gt) == 0:
        raise CnnlabError(f"ground truth {gt_path} holds no boxes")
    truth: dict[int, tuple[list, list]] = {}
    for (frame, oid), row in zip(gt.index, gt[["X", "Y", "Width", "Height"]].to_numpy(float)):
        ids, boxes = truth.setdefault(int(frame), ([], []))
        ids.append(int(oid))
        boxes.append([row[0], row[1], row[0] + row[2], row[1] + row[3]])
    tracked: dict[int, tuple[list, list]] = {}
    for frame, track, box, _ in rows:
        ids, boxes = tracked.setdefault(int(frame), ([], []))
        ids.append(int(track))
        boxes.append([float(v) for v in box])
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in sorted(set(truth) | set(tracked)):
        oids, oboxes = truth.get(frame, ([], []))
        hids, hboxes = tracked.get(frame, ([], []))
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
    return out
