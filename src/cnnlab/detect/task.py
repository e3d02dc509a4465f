"""Object detection as a :class:`~cnnlab.tasks.base.Task`: boxes and classes per image, GIoU + BCE, mAP.

``task: detect`` runs through the same :func:`cnnlab.train.run.run_training` and Trainer as
classification; this module supplies what differs -- the detection splits
(:func:`cnnlab.data.detection.load_detection_data`) in :class:`~cnnlab.detect.batches.DetectionBatches`,
the detector over a backbone's features, the loss of a step
(:class:`~cnnlab.detect.loss.DetectionLoss`) and mAP@0.5 / mAP@[.5:.95] from torchmetrics. Under
torchrun each rank detects on its share of a split and the detections are gathered, so every
rank computes the same mAP over the whole split.

>>> from cnnlab.tasks import get_task
>>> get_task("detect").headline
Headline(val_metric='val_map50', test_metric='test_map50', direction='max')
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from cnnlab.data.detection import choose_detection_split, load_detection_data, read_detection_source
from cnnlab.detect.batches import DetectionBatches
from cnnlab.detect.evaluate import detect_batches
from cnnlab.detect.loss import DetectionLoss
from cnnlab.detect.model import build_detector
from cnnlab.detect.metrics import detection_map
from cnnlab.errors import CnnlabError
from cnnlab.tasks import register_task
from cnnlab.tasks.base import Headline, Task, TaskData
from cnnlab.train.precision import autocast


def input_stats(cfg, splits, notice) -> tuple[list[float] | None, list[float] | None]:
    """The normalisation: the train split's, or the pretrained backbone's own (what it learnt on)."""
    if not cfg.data.normalize:
        return None, None
    mean, std = list(splits.mean), list(splits.std)
    weights = cfg.model.options.get("weights")
    if isinstance(weights, str):  # a file, a run, a tag (in1k) or torchvision's download
        from cnnlab.transfer.adapt import weights_input  # why lazy: transfer sits above detect's model

        size, w_mean, w_std = weights_input(weights, cfg.model.name)
        if w_mean is not None and w_std is not None:
            if len(w_mean) != len(mean):
                raise CnnlabError(f"model.weights {weights} was trained on {len(w_mean)}-channel images but "
                                  f"{cfg.data.name} has {len(mean)}; use weights of matching channels")
            mean, std = [float(v) for v in w_mean], [float(v) for v in w_std]
            if notice:
                notice(f"normalising with the pretrained backbone's mean/std {[round(v, 3) for v in mean]} / "
                       f"{[round(v, 3) for v in std]}")
    return mean, std


@register_task("detect")
class DetectTask(Task):
    headline = Headline(val_metric="val_map50", test_metric="test_map50", direction="max", label="mAP@0.5",
                        fraction=True)
    metrics = {"val_map50": "max", "val_map": "max", "val_loss": "min"}
    validation_keys = ("val_loss", "val_accuracy")  # val_accuracy stays null: the records keep one shape
    counts_correct = False
    model_options = ("weights",)  # build_detector refuses the transfer options
    curve_scores = ("mean average precision", {"val_map50": "validation mAP@0.5", "val_map": "validation mAP@[.5:.95]"})

    def dataset_info(self, data_cfg):
        from cnnlab.detect.data_views import dataset_info  # why lazy: the views load matplotlib; training does not

        return dataset_info(data_cfg)

    def dataset_preview(self, data_cfg, count, seed, augment, notice):
        from cnnlab.detect.data_views import dataset_preview  # why lazy: as dataset_info

        return dataset_preview(data_cfg, count, seed, augment, notice)

    def describe_test(self, summary: dict[str, Any]) -> str | None:
        if summary.get("test_map50") is None:
            return None
        return f"test mAP@0.5: {summary['test_map50']:.4f}  mAP@[.5:.95]: {summary['test_map']:.4f}"

    def check(self, cfg) -> None:
        if cfg.train.early_stopping.monitor == "val_accuracy":
            raise CnnlabError("train.early_stopping.monitor=val_accuracy has no meaning for detection; "
                              "set it to val_map50 or val_loss")
        super().check(cfg)

    # ------------------------------------------------------------------ data and model

    def load_source(self, cfg):
        """The train and test images with their boxes, decoded once on the CPU (a sweep's trials share them)."""
        return read_detection_source(cfg.data)

    def cv_items(self, cfg, data):
        """The training images (after ``data.limit_train``) with their boxes; folds are plain shuffled ones."""
        data = data if data is not None else read_detection_source(cfg.data)
        # the same draw of limit_train as a run's (choose_detection_split); no validation split is held out here
        keep, _ = choose_detection_split(len(data.train), dataclasses.replace(cfg.data, val="none"), cfg.train.seed)
        items = data.fold(keep, []) if len(keep) < len(data.train) else data
        return items, len(items.train), None

    def fold_data(self, items, train_index, held_index, fold: int):
        return items.fold(train_index, held_index)

    def load(self, cfg, device, data, notice) -> TaskData:
        splits = load_detection_data(cfg, device, data)
        mean, std = input_stats(cfg, splits, notice)
        classes = list(splits.classes)
        train = DetectionBatches(splits.train, cfg.data.batch_size, shuffle=True, augment=cfg.data.augment,
                                 mean=mean, std=std, seed=cfg.train.seed, channels_last=cfg.train.channels_last)
        eval_bs = cfg.data.eval_batch_size
        val = None if splits.val is None else DetectionBatches(splits.val, eval_bs, mean=mean, std=std)
        test = DetectionBatches(splits.test, eval_bs, mean=mean, std=std)
        counts = {"train": len(splits.train), "val": 0 if splits.val is None else len(splits.val),
                  "test": len(splits.test)}
        return TaskData(train=train, val=val, test=test,
                        input_size=tuple(int(v) for v in splits.train.images.shape[1:]),
                        num_classes=len(classes), classes=classes, mean=mean, std=std, counts=counts,
                        dataset=cfg.data.name, source=splits,
                        summary={"classes": classes, "data_counts": dict(getattr(splits, "counts", {}) or {})})

    def make_model(self, cfg, input_size, num_classes: int, pretrained: bool = True):
        return build_detector(cfg, input_size, num_classes, pretrained)

    def build_model(self, cfg, data: TaskData):
        device = data.train.images.device
        model = build_detector(cfg, data.input_size, data.num_classes).to(device)
        if cfg.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def setup(self, trainer) -> None:
        model = trainer.model
        self.loss_fn = DetectionLoss(trainer.cfg.detect, model.strides)
        self.points = model.points().to(trainer.device)  # (A, 2)
        self.point_strides = model.point_strides().to(trainer.device)  # (A,)

    # ------------------------------------------------------------------ loss and metrics

    def training_loss(self, trainer, x, targets):
        """The detection loss of a batch (boxes, objectness, classes); a detector counts no correct answers."""
        with autocast(trainer.device.type, trainer.cfg.train.precision):
            pred = trainer.train_model(x)  # (B, A, 5 + K)
        parts = self.loss_fn(pred.float(), self.points, self.point_strides, targets.boxes, targets.labels)
        return parts["loss"], None

    def evaluate(self, trainer, batches, curves: bool = False) -> dict[str, Any]:
        """mAP and the loss over the whole split: each rank detects on its share, the results are gathered."""
        s = trainer.strategy
        preds, targets, loss = detect_batches(trainer.model, s.eval_shard(batches), trainer.cfg.detect)
        if s.world_size > 1:
            n = len(targets)
            parts = s.gather(([{k: v.cpu() for k, v in p.items()} for p in preds],
                              [{k: v.cpu() for k, v in t.items()} for t in targets],
                              0.0 if loss is None else loss * n, n))
            preds = [p for part in parts for p in part[0]]
            targets = [t for part in parts for t in part[1]]
            count = sum(part[3] for part in parts)
            loss = sum(part[2] for part in parts) / count if count else None
        result = detection_map(preds, targets, self.classes_of(trainer), curves=curves)
        result["loss"] = loss
        return result

    @staticmethod
    def classes_of(trainer) -> list[str]:
        return list(trainer.extra_checkpoint["classes"])

    def validate(self, trainer, batches) -> dict[str, Any]:
        r = self.evaluate(trainer, batches)
        return {"val_loss": r["loss"], "val_accuracy": None, "val_map50": r["map50"] or 0.0,
                "val_map": r["map"] or 0.0}

    def test(self, trainer, data: TaskData) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = self.evaluate(trainer, data.test)
        return {"test_map50": result["map50"], "test_map": result["map"], "test_loss": result["loss"],
                "test_per_class": {k: {"map50": v["map50"], "map": v["map"]}
                                   for k, v in result["per_class"].items()},
                "_seconds": time.perf_counter() - t0}

    def untested(self) -> dict[str, Any]:
        return {"test_map50": None, "test_map": None}

    def summary(self, trainer, data: TaskData) -> dict[str, Any]:
        maps = [h["val_map50"] for h in trainer.history if h.get("val_map50") is not None]
        # DESIGN: every training summary has test_accuracy; a detector has none, so null and mAP beside it.
        return {"test_accuracy": None, "best_val_map50": max(maps) if maps else None}

    def describe_validation(self, metrics: dict[str, Any]) -> str:
        if metrics.get("val_map50") is None:
            return ""
        return (f"val loss {metrics['val_loss']:.4f} mAP@0.5 {metrics['val_map50']:.4f} "
                f"mAP@[.5:.95] {metrics['val_map']:.4f}")

    def describe_counts(self, data: TaskData) -> str:
        return f"{super().describe_counts(data)}, {data.num_classes} classes"

    def describe_start(self, cfg, data: TaskData, params: int) -> str:
        return (f"training a detector on {cfg.model.name} features, strides {cfg.detect.strides} "
                f"({params:,} parameters) on {data.dataset}")
