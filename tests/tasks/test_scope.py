"""Config scoped to the task: every setting a task would ignore is refused before work, saying why (issue 19)."""

from __future__ import annotations

import typing

import pytest

from cnnlab.config import config_to_dict, config_with_overrides, get_dotted, leaf_fields, load_config
from cnnlab.config.scope import check_scope, out_of_scope
from cnnlab.errors import CnnlabError
from cnnlab.tasks import task_names

BASE = {"classify": "mnist-fast", "detect": "detect-raccoon"}

# Every setting that applies to every task. A new key must be added here or declared with
# setting(tasks=..., why=...) in cnnlab/config/schema.py: none escapes the decision.
ALL_TASKS = {
    "data.augment.brightness", "data.augment.contrast", "data.augment.hflip", "data.augment.hue",
    "data.augment.saturation", "data.augment.scale", "data.augment.translate", "data.batch_size", "data.cache_dir",
    "data.channels", "data.data_dir", "data.download", "data.eval_batch_size", "data.final_fit", "data.image_size",
    "data.limit_train", "data.name", "data.normalize", "data.root", "data.strict", "data.val", "data.val_fraction",
    "description", "model.name", "model.options", "name", "optim.alpha", "optim.amsgrad", "optim.betas",
    "optim.bias_lr_scale", "optim.decay_norm_and_bias", "optim.eps", "optim.fused", "optim.l1", "optim.l2",
    "optim.layer_decay", "optim.lr", "optim.momentum", "optim.name", "optim.nesterov", "optim.per_1024",
    "optim.weight_decay", "schedule.factor", "schedule.final_div", "schedule.initial_div", "schedule.min_lr",
    "schedule.max_lr", "schedule.name", "schedule.patience", "schedule.peak_lr", "schedule.step_epochs", "schedule.threshold",
    "schedule.warmup_epochs", "schedule.warmup_fraction", "task", "train.channels_last", "train.checkpoint_every",
    "train.clip_norm", "train.clip_value", "train.deterministic", "train.device", "train.dist_backend",
    "train.dist_timeout", "train.early_stopping.min_delta", "train.early_stopping.monitor",
    "train.early_stopping.patience", "train.early_stopping.restore_best", "train.epochs", "train.log_every",
    "train.loggers", "train.plots", "train.precision", "train.seed", "train.sync_bn", "train.threads",
    "train.unfreeze_every",
}

CANDIDATES = {bool: [True, False], float: [0.5, 0.25, 2.0, 10.0], int: [2, 3, 1, 64], str: ["2", "coco"]}
SPECIAL = {"data.augment.random_resized_crop": [[0.5, 1.0]], "data.augment.resized_crop_ratio": [[0.5, 2.0]],
           "data.classes": [["a", "b"]], "detect.strides": [[8], [16]], "detect.size_ranges": [[32.0]],
           "schedule.max_lr": ["find"], "data.scenes.digits": ["2"], "data.scenes.format": ["coco"]}


def candidates(key: str, f) -> list:
    if key in SPECIAL:
        return SPECIAL[key]
    hint = typing.get_type_hints(type_of(key))[key.rsplit(".", 1)[1]]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        return list(typing.get_args(hint))
    if typing.get_origin(hint) is typing.Union and args:
        hint = args[0]
    return CANDIDATES.get(hint, [])


def type_of(key: str):
    """The dataclass holding ``key``."""
    cfg = load_config(None)
    return type(get_dotted(cfg, key.rsplit(".", 1)[0])) if "." in key else type(cfg)


def non_default(task: str, key: str, f):
    """A config of ``task`` with ``key`` set to a valid value other than its default (None if none is found)."""
    raw = config_to_dict(load_config(BASE[task]))
    default = get_dotted(load_config(BASE[task]), key)
    for value in candidates(key, f):
        try:
            cfg = config_with_overrides(raw, {key: value})
        except CnnlabError:
            continue
        if get_dotted(cfg, key) != default:
            return cfg
    return None


def test_every_key_either_applies_to_every_task_or_names_its_tasks_and_why():
    unscoped = {key for key, f in leaf_fields() if f.metadata.get("tasks") is None}
    assert unscoped == ALL_TASKS  # a new key decides: add it above, or give it tasks= and why=
    for key, f in leaf_fields():
        if f.metadata.get("tasks") is not None:
            assert set(f.metadata["tasks"]) <= set(task_names()) and f.metadata["why"], key


@pytest.mark.parametrize("key", sorted(k for k, f in leaf_fields() if f.metadata.get("tasks") is not None))
def test_every_key_that_does_not_apply_to_a_task_is_refused_in_one_line_naming_why(key):
    f = dict(leaf_fields())[key]
    others = [t for t in task_names() if t not in f.metadata["tasks"]]
    assert others
    for task in others:
        cfg = non_default(task, key, f)
        assert cfg is not None, f"no valid non-default value tried for {key}"
        with pytest.raises(CnnlabError) as info:
            check_scope(cfg)
        message = str(info.value)
        assert message.startswith(f"{key} is not supported with task={task}: {f.metadata['why']}")
        assert "\n" not in message


def test_defaults_and_every_shipped_preset_pass_the_scope():
    from cnnlab.config import preset_names

    for name in preset_names():
        assert out_of_scope(load_config(name)) == [], name


def test_the_issues_examples_are_refused_through_the_cli(tmp_path, capsys):
    from cnnlab.cli import main

    for argv in (["detect-raccoon", "data.augment.rotate=15", "data.augment.erase_prob=0.5",
                  "data.augment.crop_padding=4"], ["mnist-fast", "detect.box_weight=3", "data.scenes.size=64"]):
        out = tmp_path / "run"
        code = main(["train", *argv, "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and not out.exists()
        task = "detect" if argv[0].startswith("detect") else "classify"
        assert err[0].startswith("cnnlab: error: ") and f" is not supported with task={task}: " in err[0]
        for key in argv[1:]:  # the first with its reason, the others named in the same line
            assert key.split("=")[0] in err[0]


def test_a_monitor_the_task_does_not_report_is_refused():
    from cnnlab.tasks import get_task

    with pytest.raises(CnnlabError, match="val_accuracy has no meaning for detection"):
        get_task("detect").check(load_config("detect-raccoon", ["train.early_stopping.monitor=val_accuracy"]))
    with pytest.raises(CnnlabError, match="is not a metric of task=classify"):
        get_task("classify").check(load_config("mnist-fast", ["train.early_stopping.monitor=val_map50"]))
