"""The read side of classification runs: ``cnnlab eval`` (accuracy, confusion, top losses) and ``predict`` (top-k).

>>> from cnnlab.tasks import get_reader
>>> get_reader("classify").take_options("predict", {"top_k": 5, "score_threshold": None}, "runs/mnist")
{'top_k': 5, 'native_size': None}
"""

from __future__ import annotations

from typing import Any

from cnnlab.errors import CnnlabError, check_int_range
from cnnlab.tasks import register_reader
from cnnlab.tasks.reading import RunReader

# why the cnnlab imports inside methods: an exported MODEL.onnx is read with ONNX Runtime alone, so this
# module must not load torch (cnnlab.predict and cnnlab.report.evaluation do)

DEFAULT_TOP = 16  # images in top_losses.png
DEFAULT_TOP_K = 3  # classes listed per image


@register_reader("classify")
class ClassifyReader(RunReader):
    runs_name = "classification runs"
    run_kind = "a classification run"
    read_commands = "cnnlab eval, predict, explain, export, profile, report"
    options = {"eval": {"tta": "--tta", "top": "--top"},
               "predict": {"top_k": "-k/--top-k {value}", "native_size": "--native-size"}}

    def evaluate(self, run_dir, *, data_dir=None, weights=None, tta=None, top=None) -> dict:
        from cnnlab.report.evaluation import MAX_TOP, evaluate_run

        top = DEFAULT_TOP if top is None else top
        check_int_range("--top", top, 1, MAX_TOP)  # before the run and the data are loaded
        return evaluate_run(run_dir, data_dir=data_dir, weights=weights, top=top, tta=tta)

    def evaluation_text(self, result: dict) -> tuple[list[str], str]:
        lines = [f"test accuracy: {result['test_accuracy']:.4f}  (loss {result['test_loss']:.4f}, "
                 f"{result['count']} images, weights {result['weights']}"
                 + (f", tta {result['tta']}" if result.get("tta", "none") != "none" else "") + ")"]
        width = max(len(c) for c in result["per_class_accuracy"]) + 2
        lines += [f"  {name:<{width}}{acc:.4f}" for name, acc in result["per_class_accuracy"].items()]
        return lines, f"wrote {result['confusion_png']} and {result['top_losses_png']}"

    def predict(self, run_dir, paths: list[str], *, top_k=None, native_size=None) -> list[dict]:
        top_k = DEFAULT_TOP_K if top_k is None else top_k
        if top_k < 1:  # checked before the run and the images are loaded
            raise CnnlabError(f"-k/--top-k {top_k} must be at least 1")
        if str(run_dir).endswith(".onnx"):  # ONNX Runtime alone: torch is never imported on this path
            from cnnlab.transfer.onnx_predict import predict_onnx

            if native_size:
                raise CnnlabError("--native-size needs the run directory: an exported ONNX model has a fixed "
                                  "input size")
            return predict_onnx(run_dir, paths, top_k)
        from cnnlab.predict import predict_files

        return predict_files(run_dir, paths, top_k, native_size=bool(native_size))

    def prediction_text(self, results: list[dict], options: dict[str, Any]) -> tuple[list[str], str | None]:
        lines = []
        for item in results:
            best = ", ".join(f"{p['class']} {p['probability']:.3f}" for p in item["top"])
            lines.append(f"{item['image']}: {best}")
        return lines, None

    def frame_model(self, source: str, *, k: int = 3, **options):
        from cnnlab.video.models import FrameClassifier

        return FrameClassifier(source, k)
