"""Image classification: one label per image, cross-entropy, accuracy.

The default task (``task: classify``). Its data are the classification readers of
:mod:`cnnlab.data` (or cached backbone features, ``model.features_from``), its model any
registered classifier, its loss cross-entropy with label smoothing (soft targets too: mixup
and cutmix hand it mixed label distributions), its metrics loss and accuracy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.data.datasets import ImageData, load_dataset
from cnnlab.data.folder import list_classes, split_folders
from cnnlab.data.pipeline import make_splits
from cnnlab.data.splits import limit_train
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, model_arguments
from cnnlab.models.shapes import feature_shape
from cnnlab.tasks import register_task
from cnnlab.tasks.base import Headline, Task, TaskData
from cnnlab.train.evaluate import evaluate
from cnnlab.train.precision import autocast
from cnnlab.transfer.features import FeatureHead
from cnnlab.transfer.freeze import apply_freeze
from cnnlab.transfer.heads import add_hidden_layer, check_head_init, check_hidden, init_head_from_imagenet

# Transfer options (cnnlab.transfer): taken out before the constructor sees the options.
TRANSFER_OPTIONS = ("weights", "freeze", "freeze_k", "features_from", "head_hidden", "head_init")


def build_classifier(cfg: Config, input_size: tuple[int, int, int], num_classes: int,
                pretrained: bool = True) -> torch.nn.Module:
    """The configured classifier for images of ``input_size`` (C, H, W) and ``num_classes`` classes.

    ``model.weights`` fills it from a file or run (skipped with ``pretrained=False``, as when
    a run's own checkpoint follows), then ``model.freeze``/``model.freeze_k`` freeze stages;
    ``model.features_from`` makes the model a head over cached features of ``input_size[0]``.
    """
    options = dict(cfg.model.options)
    transfer = {key: options.pop(key) for key in TRANSFER_OPTIONS if key in options}
    if "features_from" in transfer:
        hidden = transfer.get("head_hidden")
        return FeatureHead(input_size[0], num_classes, hidden=0 if hidden is None else check_hidden(hidden))
    accepted = model_arguments(cfg.model.name)
    c, h, w = input_size
    for key, value in (("in_channels", c), ("num_classes", num_classes)):
        if key in options and options[key] != value:
            raise CnnlabError(f"model.{key}={options[key]} but the data has {value}; remove model.{key}")
        options[key] = value
    if "image_size" in accepted:
        options.setdefault("image_size", h)
    weights = transfer.get("weights") if pretrained else None
    model = create_model(cfg.model.name, weights=weights, **options)
    if transfer.get("head_hidden") is not None:  # an extra dense layer before the classifier
        add_hidden_layer(model, transfer["head_hidden"])
    feature_shape(model, input_size, cfg.model.name)  # a size the model cannot take fails here, clearly
    if transfer.get("freeze") not in (None, "none") or "freeze_k" in transfer:
        apply_freeze(model, transfer.get("freeze", "all_but_last_k"), transfer.get("freeze_k"))
    return model


def class_folders(data: TaskData) -> list[str]:
    """The class folders' own names of a folder dataset, in label order (else its class names).

    A ``classes.tsv`` gives Imagenette's folders (WordNet ids, ``n01440764``) readable names
    (``tench``); ``model.head_init=imagenet`` needs the ids back.
    """
    root = getattr(data.source, "source", None)
    if isinstance(root, str) and Path(root).is_dir():
        folders = list_classes(split_folders(Path(root))[0])
        if len(folders) == len(data.classes):
            return folders
    return list(data.classes)


@register_task("classify")
class ClassifyTask(Task):
    headline = Headline(val_metric="val_accuracy", test_metric="test_accuracy", direction="max", label="accuracy",
                        fraction=True)
    metrics = {"val_accuracy": "max", "val_loss": "min"}
    validation_keys = ("val_loss", "val_accuracy")
    counts_correct = True
    model_options = TRANSFER_OPTIONS
    curve_scores = ("accuracy", {"train_accuracy": "train", "val_accuracy": "validation"})

    def dataset_info(self, data_cfg):
        from cnnlab.classify.data_views import dataset_info  # why lazy: the views load matplotlib; training does not

        return dataset_info(data_cfg)

    def dataset_preview(self, data_cfg, count, seed, augment, notice):
        from cnnlab.classify.data_views import dataset_preview  # why lazy: as dataset_info

        return dataset_preview(data_cfg, count, seed, augment, notice)

    def check(self, cfg) -> None:
        super().check(cfg)
        check_head_init(cfg.model.options)  # refused before any data is read

    def __init__(self) -> None:
        self.whitening = None  # what train.whitening did to the first conv (for the summary)
        self.head_init = None  # model.head_init: which ImageNet classifier rows the new head started from

    # ------------------------------------------------------------------ data and model

    def load_source(self, cfg):
        return None if "features_from" in cfg.model.options else load_dataset(cfg.data)

    def cv_items(self, cfg, data):
        """The training images (after ``data.limit_train``, each class keeping its share); folds are stratified."""
        data = data if data is not None else load_dataset(cfg.data)
        x, y = data.train_x, data.train_y
        keep = limit_train(y.numpy(), cfg.data.limit_train, cfg.train.seed)
        if keep is not None:
            x, y = x[keep], y[keep]
        items = ImageData(data.name, x, y, data.test_x, data.test_y, data.classes, data.source, data.skipped)
        return items, len(y), y.numpy()

    def fold_data(self, items, train_index, held_index, fold: int):
        x, y = items.train_x, items.train_y
        return ImageData(f"{items.name}-fold{fold}", x[train_index], y[train_index], x[held_index], y[held_index],
                         items.classes, items.source, items.skipped)

    def load(self, cfg, device, data, notice) -> TaskData:
        recorded = None  # the preprocessing of published weights (model.weights=in1k or download)
        if "features_from" in cfg.model.options:  # a head trained on cached backbone features (cnnlab.transfer)
            from cnnlab.transfer.features import feature_splits  # why lazy: transfer sits above runs/models

            data, splits = feature_splits(cfg, device, data, notice=notice)
        else:
            data = data if data is not None else load_dataset(cfg.data)
            stats = None
            weights = cfg.model.options.get("weights")
            if isinstance(weights, str):  # pretrained: feed it what it learned on (its size, its mean/std)
                from cnnlab.transfer.adapt import adapt_to_weights, weights_preprocessing  # why lazy: as above

                data, stats = adapt_to_weights(data, weights, notice=notice, model_name=cfg.model.name)
                recorded = weights_preprocessing(weights, cfg.model.name)
            splits = make_splits(data, cfg.data, device, cfg.train.seed, cfg.train.channels_last, stats=stats)
        summary: dict[str, Any] = {"skipped_images": len(data.skipped), "skipped_files": data.skipped[:50]}
        if recorded is not None:
            summary["weights_preprocessing"] = recorded
        return TaskData(train=splits.train, val=splits.val, test=splits.test, input_size=tuple(data.input_size),
                        num_classes=data.num_classes, classes=data.classes, mean=splits.mean, std=splits.std,
                        counts=splits.counts, dataset=data.name, source=data, summary=summary)

    def make_model(self, cfg, input_size, num_classes: int, pretrained: bool = True):
        return build_classifier(cfg, input_size, num_classes, pretrained)

    def build_model(self, cfg, data: TaskData):
        device = data.train.images.device
        model = build_classifier(cfg, data.input_size, data.num_classes)
        if cfg.model.options.get("head_init") is not None:  # the classifier from the weights' own classes
            rows = init_head_from_imagenet(model, cfg.model.name, cfg.model.options.get("weights"), class_folders(data))
            self.head_init = {"head_init": "imagenet", "imagenet_rows": rows}
        model = model.to(device)
        if cfg.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.train.whitening != "none":  # first conv from the training images' patch statistics
            from cnnlab.train.whitening import apply_whitening

            src = data.train
            self.whitening = apply_whitening(model, src.images, src.mean, src.std, cfg.train.whitening,
                                             cfg.train.whitening_eps, cfg.train.seed)
        return model

    def before_fit(self, trainer, data: TaskData, notice) -> dict[str, float]:
        """``train.compile``: compiled and warmed up here, so train_seconds holds no compile time."""
        cfg = trainer.cfg
        if not cfg.train.compile:
            return {}
        from cnnlab.train.fastpath import compile_model

        x, y = next(data.train.epoch(0))
        probe = data.val if data.val is not None else data.test
        eval_x = next(iter(probe))[0] if probe is not None else None
        seconds = compile_model(trainer.model, x, y, eval_x, cfg.train.precision, cfg.train.label_smoothing,
                                notice=notice or (lambda m: None))
        return {"compile": seconds}

    # ------------------------------------------------------------------ loss and metrics

    def training_loss(self, trainer, x, y):
        """Cross-entropy (with ``train.label_smoothing``) and the count of correct predictions.

        ``y`` holds class indices (B,), or label distributions (B, K) from mixup/cutmix: the
        loss is then the cross-entropy against the distribution and "correct" means the
        predicted class is the distribution's largest.
        """
        with autocast(trainer.device.type, trainer.cfg.train.precision):
            logits = trainer.train_model(x)  # (B, classes)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=trainer.cfg.train.label_smoothing)
        with torch.no_grad():
            target = y if y.dim() == 1 else y.argmax(1)
            correct = (logits.argmax(1) == target).sum()
        return loss, correct

    def evaluate(self, trainer, batches, tta: str = "none"):
        """Loss and accuracy over ``batches`` (each rank its share, the sums added over ranks)."""
        s = trainer.strategy
        precision = trainer.cfg.train.precision
        if s.world_size == 1:
            return evaluate(trainer.model, batches, precision, tta=tta)
        from cnnlab.train.distributed import metrics_from_sums, shard_sums

        return metrics_from_sums(s.reduce_sum(shard_sums(trainer.model, s.eval_shard(batches), precision, tta=tta)))

    def validate(self, trainer, batches) -> dict[str, Any]:
        result = self.evaluate(trainer, batches)
        return {"val_loss": result.loss, "val_accuracy": result.accuracy}

    def test(self, trainer, data: TaskData) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = self.evaluate(trainer, data.test, tta=trainer.cfg.train.tta)
        return {"test_accuracy": result.accuracy, "test_loss": result.loss,
                "_seconds": time.perf_counter() - t0}

    def summary(self, trainer, data: TaskData) -> dict[str, Any]:
        accs = [h["val_accuracy"] for h in trainer.history if h.get("val_accuracy") is not None]
        return {"best_val_accuracy": max(accs) if accs else None}

    def effective(self, cfg) -> dict[str, Any]:
        """The classification parts of the summary's ``effective`` block."""
        return {"tta": cfg.train.tta, "whitening": self.whitening, "head_init": self.head_init}

    def describe_validation(self, metrics: dict[str, Any]) -> str:
        if metrics.get("val_accuracy") is None:
            return ""
        return f"val loss {metrics['val_loss']:.4f} acc {metrics['val_accuracy']:.4f}"
