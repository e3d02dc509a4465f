"""The read side of detection runs: ``cnnlab eval`` (mAP, PR curves) and ``predict`` (boxes), and a video's detector.

>>> from cnnlab.tasks import get_reader
>>> get_reader("detect").take_options("predict", {"top_k": 5}, "runs/raccoon")
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: -k/--top-k 5 applies to classification runs only; a detection run lists every box scoring at least --score-threshold (cap them with --max-detections N)
"""

from __future__ import annotations

from typing import Any

from cnnlab.tasks import register_reader
from cnnlab.tasks.reading import RunReader

# why the cnnlab imports inside methods: the registry imports every reader to check options, and a
# classification command must not load the detector (cnnlab.detect.runs) for that

PREDICT_OPTIONS = {"score_threshold": "--score-threshold", "iou_threshold": "--iou-threshold",
                   "max_detections": "--max-detections"}


@register_reader("detect")
class DetectReader(RunReader):
    runs_name = "detection runs"
    run_kind = "an object-detection run"
    read_commands = "cnnlab eval, predict, profile"
    options = {"eval": {"score_threshold": "--score-threshold", "iou_threshold": "--iou-threshold"},
               "predict": {"out": "--out", "overwrite": "--overwrite", **PREDICT_OPTIONS},
               "video": dict(PREDICT_OPTIONS)}
    instead = {
        "eval": {"tta": "a detection run is evaluated without test-time augmentation (drop --tta)",
                 "top": "a detection run draws no top_losses.png (drop --top)"},
        "predict": {"native_size": "a detector letterboxes every image to its size and maps the boxes back",
                    "top_k": "a detection run lists every box scoring at least --score-threshold "
                             "(cap them with --max-detections N)"}
    }
    predicts = "boxes"
    explains = False
    exports = False
    tracks = True

    def model_input(self, cfg) -> tuple[tuple[int, int, int], int]:
        from cnnlab.data.detection import FIXED_CLASSES, default_image_size

        size = default_image_size(cfg.data)
        channels = cfg.data.channels or (1 if cfg.data.name == "mnist-scenes" else 3)
        return (channels, size, size), len(cfg.data.classes or FIXED_CLASSES.get(cfg.data.name, ["object"]))

    def model_name(self, cfg) -> str:
        return f"detector on {cfg.model.name}"

    def evaluate(self, run_dir, *, data_dir=None, weights=None, score_threshold=None, iou_threshold=None) -> dict:
        from cnnlab.detect.runs import evaluate_detection_run

        return evaluate_detection_run(run_dir, data_dir=data_dir, weights=weights,
                                      score_threshold=score_threshold, iou_threshold=iou_threshold)

    def evaluation_text(self, result: dict) -> tuple[list[str], str]:
        r = result
        lines = [f"mAP@0.5: {r['map50']:.4f}  mAP@[.5:.95]: {r['map']:.4f}  ({r['images']} test images, "
                 f"{r['boxes']} boxes, weights {r['weights']})"]
        width = max(len(c) for c in r["per_class"]) + 2
        lines.append(f"  {'class':<{width}}{'mAP@0.5':>9}{'mAP@[.5:.95]':>14}{'boxes':>7}")
        fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731  (a class with no test box)
        for name, v in r["per_class"].items():
            lines.append(f"  {name:<{width}}{fmt(v['map50']):>9}{fmt(v['map']):>14}{v['boxes']:>7}")
        return lines, f"wrote {r['pr_curve_png']} and {r['detections_png']}"

    def predict(self, run_dir, paths: list[str], *, out=None, overwrite=None, score_threshold=None,
                iou_threshold=None, max_detections=None) -> list[dict]:
        from cnnlab.detect.runs import PREDICT_SCORE, predict_detection_files

        return predict_detection_files(
            run_dir, paths, out_dir=out, overwrite=bool(overwrite),
            score_threshold=PREDICT_SCORE if score_threshold is None else score_threshold,
            iou_threshold=iou_threshold, max_detections=max_detections)

    def predictions_json(self, run_dir, results: list[dict]) -> dict:
        return {"run_dir": str(run_dir), "predictions": {r["image"]: r["detections"] for r in results}}

    def prediction_text(self, results: list[dict], options: dict[str, Any]) -> tuple[list[str], str | None]:
        lines = []
        for r in results:
            lines.append(f"{r['image']} ({r['width']}x{r['height']}): {len(r['detections'])} detection(s)")
            for d in r["detections"]:
                x1, y1, x2, y2 = d["box"]
                lines.append(f"  {d['label']} {d['score']:.3f} [{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]")
        drawn = f"drew {len(results)} image(s) into {options['out']}" if options.get("out") else None
        return lines, drawn

    def frame_model(self, source: str, *, k: int = 3, score_threshold=None, iou_threshold=None,
                    max_detections=None):
        from cnnlab.video.models import FrameDetector

        return FrameDetector(source, score_threshold, iou_threshold, max_detections)
