"""Using a trained detection run: ``cnnlab eval`` (mAP, PR curves, a picture grid) and ``cnnlab predict``.

Reads run directories only; the trainer is never imported (DESIGN: reading a run does not
import the trainer; tests/test_boundaries.py checks it).

>>> report = evaluate_detection_run("runs/scenes")  # doctest: +SKIP
>>> report["map50"], report["map"]  # doctest: +SKIP
(0.97, 0.74)
>>> predict_detection_files("runs/raccoon", ["photo.jpg"])[0]["detections"][0]  # doctest: +SKIP
{'box': [12.5, 30.0, 410.2, 380.9], 'label': 'raccoon', 'score': 0.91}
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch

from cnnlab.data.detection import letterbox_pil, load_detection_data, unletterbox_boxes
from cnnlab.data.folder import convert_mode, expand_image_paths
from cnnlab.detect.batches import DetectionBatches
from cnnlab.detect.draw import detection_grid, detection_labels, draw_boxes, save_png
from cnnlab.detect.evaluate import detect_batches, nms_options
from cnnlab.detect.metrics import detection_map, plot_pr_curves
from cnnlab.detect.postprocess import postprocess
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic
from cnnlab.rundir import check_out_dir, lock_run_dir, open_run_dir
from cnnlab.runs import load_run

GRID_IMAGES = 16  # test images drawn in detections.png
PREDICT_SCORE = 0.25  # predict's default score threshold: what a reader wants listed (mAP uses the run's 0.05)


def check_threshold(name: str, value: float | None) -> None:
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise CnnlabError(f"{name} {value} is out of range; expected a number in [0, 1]")


def prediction_options(run, score_threshold=None, iou_threshold=None, max_detections=None) -> dict[str, Any]:
    """The NMS options of a detection run, with the command line's thresholds (checked) in place of its own."""
    check_threshold("--score-threshold", score_threshold)
    check_threshold("--iou-threshold", iou_threshold)
    if max_detections is not None and not 1 <= max_detections <= 100_000:
        raise CnnlabError(f"--max-detections {max_detections} is out of range; expected 1 to 100000")
    opts = nms_options(run.config.detect)
    for key, value in (("score_threshold", score_threshold), ("iou_threshold", iou_threshold),
                       ("max_detections", max_detections)):
        if value is not None:
            opts[key] = value
    return opts


def load_detection_run(run_dir, weights: str | None = None, device: str = "cpu"):
    return load_run(run_dir, device=device, weights=weights, task="detect")


# ----------------------------------------------------------------------------- eval


def evaluate_detection_run(run_dir, data_dir: str | None = None, weights: str | None = None,
                           score_threshold: float | None = None, iou_threshold: float | None = None) -> dict:
    """mAP@0.5 and mAP@[.5:.95] (overall and per class) on the run's test split; writes ``eval.json``,
    ``pr_curve.png`` and ``detections.png`` (test images, true boxes magenta, predictions green)."""
    for name, value in (("--score-threshold", score_threshold), ("--iou-threshold", iou_threshold)):
        check_threshold(name, value)
    run = load_detection_run(run_dir, weights)
    with lock_run_dir(run.run_dir, kind="train"):
        return _evaluate(run, data_dir, score_threshold, iou_threshold)


def _evaluate(run, data_dir, score_threshold, iou_threshold) -> dict:

    cfg = run.config
    if data_dir:
        cfg.data.data_dir = data_dir
    if score_threshold is not None:
        cfg.detect.score_threshold = score_threshold
    if iou_threshold is not None:
        cfg.detect.iou_threshold = iou_threshold
    splits = load_detection_data(cfg)
    test = splits.test
    if tuple(test.images.shape[1:]) != tuple(run.input_size) or list(splits.classes) != list(run.classes):
        raise CnnlabError(f"the dataset now has images of {'x'.join(map(str, test.images.shape[1:]))} and classes "
                          f"{', '.join(splits.classes)}, but the run was trained on "
                          f"{'x'.join(map(str, run.input_size))} and {', '.join(run.classes)}")
    batches = DetectionBatches(test, cfg.data.eval_batch_size, mean=run.mean, std=run.std)
    preds, targets, loss = detect_batches(run.model, batches, cfg.detect)
    result = detection_map(preds, targets, run.classes, curves=True)
    out = Path(run.run_dir)
    pr_png = out / "pr_curve.png"
    plot_pr_curves(result.pop("pr_curves"), pr_png, title=f"precision-recall at IoU 0.5 ({cfg.data.name} test)")
    n = min(GRID_IMAGES, len(test))
    size = test.images.shape[-1]
    grid_png = detection_grid(test.images[:n], preds[:n], targets[:n], run.classes, out / "detections.png",
                              scale=2 if size <= 160 else 1)
    report = {"run_dir": str(run.run_dir), "weights": run.weights_file.name, "images": len(test),
              "boxes": result["boxes"], "map50": result["map50"], "map": result["map"], "map75": result["map75"],
              "mar100": result["mar100"], "test_loss": loss, "per_class": result["per_class"],
              "score_threshold": cfg.detect.score_threshold, "iou_threshold": cfg.detect.iou_threshold,
              "pr_curve_png": str(pr_png), "detections_png": str(grid_png)}
    write_json_atomic(out / "eval.json", report)
    return report


# ----------------------------------------------------------------------------- predict


def _load_image(path: str, channels: int, size: int):
    """(letterboxed uint8 (C, S, S), scale, pad, (orig_h, orig_w)) exactly as the data layer prepares it."""
    from PIL import Image


    if not Path(path).is_file():
        raise CnnlabError(f"image file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = convert_mode(img, "L" if channels == 1 else "RGB")
                out, scale, pad = letterbox_pil(img, size)
                return torch.from_numpy(out), scale, pad, (img.size[1], img.size[0])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise CnnlabError(f"cannot read image {path}: it is too large to decode safely ({exc})") from None
    except CnnlabError:
        raise
    except Exception as exc:  # Pillow raises many types for a broken file
        raise CnnlabError(f"cannot read image {path}: {' '.join(str(exc).split())[:200]}") from None


def to_original(det: dict, scale: float, pad, orig_hw, classes: list[str]) -> tuple[torch.Tensor, dict, list[dict]]:
    """One image's detections in letterboxed pixels -> (boxes (K, 4), det, items) in the original's pixels.

    ``items`` are ``{"box", "label", "score"}`` dicts, rounded as ``predict`` prints them. A box
    wholly in the letterbox padding clips to no area in the original image: not a detection.
    """
    boxes = unletterbox_boxes(det["boxes"], scale, pad, orig_hw)  # original pixels, clipped
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # (K,)
    boxes, det = boxes[keep], {k: v[keep] for k, v in det.items()}
    items = [{"box": [round(float(v), 2) for v in box], "label": classes[int(lab)], "score": round(float(sc), 4)}
             for box, lab, sc in zip(boxes, det["labels"], det["scores"])]
    return boxes, det, items


@torch.no_grad()
def predict_detection_files(run_dir, paths: list[str], out_dir=None, overwrite: bool = False,
                            score_threshold: float | None = PREDICT_SCORE, iou_threshold: float | None = None,
                            max_detections: int | None = None) -> list[dict]:
    """Detections per image file, boxes in the ORIGINAL image's pixels.

    Returns ``[{"image": path, "width": w, "height": h, "detections": [{"box": [x1, y1, x2, y2],
    "label": name, "score": s}, ...]}, ...]``, best first. With ``out_dir`` (a new run-style
    folder), each image is also drawn there with its boxes, labels and scores.
    """

    if out_dir is not None:
        check_out_dir(out_dir, overwrite, kind="predict", inputs=[run_dir, *paths])
    run = load_detection_run(run_dir)
    opts = prediction_options(run, score_threshold, iou_threshold, max_detections)
    paths = expand_image_paths(paths)
    c, s, _ = run.input_size
    model = run.model
    points = model.points()
    results, drawn = [], []
    for path in paths:
        image, scale, pad, (h, w) = _load_image(path, c, s)
        x = run.normalize(image.unsqueeze(0).float() / 255.0)  # (1, C, S, S)
        det = postprocess(model(x), points, image_size=(s, s), **opts)[0]
        boxes, det, items = to_original(det, scale, pad, (h, w), run.classes)
        results.append({"image": str(path), "width": w, "height": h, "detections": items})
        if out_dir is not None:
            drawn.append((path, boxes, det, c))
    if out_dir is not None:
        _draw_originals(out_dir, overwrite, drawn, run.classes, results)
    return results


def _draw_originals(out_dir, overwrite, drawn, classes, results) -> None:
    """Each image at its own size with its boxes, into a fresh output folder (marked and locked)."""
    import numpy as np
    from PIL import Image


    with open_run_dir(out_dir, overwrite=overwrite, kind="predict", remove_on_error=True) as folder:
        used: set[str] = set()
        for (path, boxes, det, c), result in zip(drawn, results):
            with Image.open(path) as img:
                arr = np.array(convert_mode(img, "RGB"), dtype=np.uint8)  # a writable copy
            image = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
            picture = draw_boxes(image, boxes, detection_labels(det, classes), "lime",
                                 width=max(2, round(max(image.shape[1:]) / 250)))
            stem = Path(path).stem
            name = f"{stem}.png"
            k = 1
            while name in used:  # two inputs with one file name (from different folders)
                k += 1
                name = f"{stem}-{k}.png"
            used.add(name)
            result["drawn"] = str(save_png(picture, Path(folder) / name))
        write_json_atomic(Path(folder) / "detections.json", results)
