"""Fuzz targets for the one output policy (issue 21): ``--out`` x ``--overwrite`` x every writing command.

The sandbox (world.py) gains an output of every kind: a marked directory per kind (``out-KIND``),
marked files (``m-explain.png``, ``m-preview.png``, ``m-report.html``), links to them, an
explanation's own figure, and the user's files it already has. A generated input is a writing
command (tiny settings), one of those targets (or a new path), with or without ``--overwrite``.
The property, on top of the suite's usual ones (one error line, no traceback): every entry that
existed is unchanged, unless the command was given ``--overwrite`` and the target is a real
output of the command's own kind that is not one of its inputs.

A second target gives names with path separators (``name=../x``, a sweep spec's ``name:``)
without ``--out``: nothing may appear outside ``runs/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz import harness
from tests.fuzz.cli_cases import child_env
from tests.fuzz.harness import examples
from tests.fuzz.world import TINY_TRAIN
from tests.test_output_policy import _png

DIR_KINDS = ("train", "scratch-train", "sweep", "ablation", "cv", "ensemble", "explain", "features", "scenes",
             "predict")
FOLDER = [*TINY_TRAIN, "data.root=images", "data.image_size=16", "model.blocks=2", "model.filters=4"]

# name -> (argv before --out, kind written, file suffix or None for a directory)
COMMANDS = {
    "train": (["train", "tiny.yaml", *FOLDER, "--quiet"], "train", None),
    "scratch": (["scratch", "train", "mnist", "--limit", "8", "--epochs", "1"], "scratch-train", None),
    "sweep": (["sweep", "tiny-sweep.yaml", "--trials", "1", "--quiet", *FOLDER], "sweep", None),
    "ablate": (["ablate", "tiny.yaml", "--techniques", "normalization", "--quiet", *FOLDER], "ablation", None),
    "cv": (["cv", "tiny.yaml", "--folds", "2", "--quiet", *FOLDER], "cv", None),
    "bagging": (["ensemble", "--bagging", "2", "tiny.yaml", "--quiet", *FOLDER], "ensemble", None),
    "explain": (["explain", "run", "--index", "0", "--methods", "saliency"], "explain", None),
    "features": (["features", "run", "--data", "tiny.yaml"], "features", None),
    "scenes": (["data", "make-scenes", "mnist", "--train", "2", "--test", "2", "--size", "64"], "scenes", None),
    "filters": (["explain", "filters", "run"], "explain", ".png"),
    "predictions": (["explain", "predictions", "run", "--rows", "1", "--cols", "1"], "explain", ".png"),
    "report": (["report", "run", "--explain", "0"], "report", ".html"),
    "onnx": (["export", "run", "--parity-images", "0"], "export", ".onnx"),
    "torchscript": (["export", "run", "--format", "torchscript", "--parity-images", "0"], "export", ".pt"),
    "preview": (["data", "preview", "tiny.yaml", "--count", "1"], "preview", ".png"),
}
MARKED_FILES = {"m-explain.png": "explain", "m-preview.png": "preview", "m-report.html": "report"}
TARGETS = ([f"out-{k}" for k in DIR_KINDS] + [f"link-{k}" for k in ("train", "sweep", "explain")]
           + list(MARKED_FILES) + ["link.png", "out-explain/figure-0.png", "out-sweep/trials/0000", "run",
                                   "runlink", "run/", "run/final.pt", "run/best.pt", "run/config.yaml",
                                   "run/explain", "precious", "precious/config.yaml", "img.png", "afile.txt",
                                   "tiny.yaml", "images", "data/mnist", "new", "new/sub", "new.png", "new.html",
                                   "new.onnx", "new.pt", "notes.txt", "o/../out-sweep", "./out-train/", ""])


@pytest.fixture(scope="session")
def outputs_template(template, tmp_path_factory) -> Path:
    """The fuzz sandbox plus an output of every kind, marked as cnnlab marks them."""
    import shutil

    from cnnlab.fileio import html_mark
    from cnnlab.rundir import open_run_dir

    root = tmp_path_factory.mktemp("outputs-template") / "sandbox"
    shutil.copytree(template, root, symlinks=True)
    for kind in DIR_KINDS:
        with open_run_dir(root / f"out-{kind}", kind=kind) as d:
            (d / "content.txt").write_text(f"a {kind} output\n")
    with open_run_dir(root / "out-sweep" / "trials" / "0000", kind="train") as d:
        (d / "config.yaml").write_text("name: trial\n")
    for kind in ("train", "sweep", "explain"):
        os.symlink(f"out-{kind}", root / f"link-{kind}")
    _png(root / "m-explain.png", "explain")
    _png(root / "m-preview.png", "preview")
    _png(root / "out-explain" / "figure-0.png", "explain")
    (root / "m-report.html").write_text(f"<html><head>{html_mark('report')}</head></html>\n")
    os.symlink("m-explain.png", root / "link.png")
    (root / "notes.txt").write_text("irreplaceable\n")
    return root


# Directories of the sandbox that are real outputs of a kind besides out-KIND: world.py's run, made by
# `cnnlab train --out run` (its link runlink is a link, never replaced through)
OWN_DIRS = {"run": "train"}


def replaceable(target: str, kind: str, suffix: str | None) -> str | None:
    """The sandbox entry the policy lets this command replace with --overwrite, or None."""
    norm = os.path.normpath(target) if target else "."
    if suffix is None:
        if target in ("link-" + kind, "runlink"):
            return None
        return norm if norm == f"out-{kind}" or OWN_DIRS.get(norm) == kind else None
    return norm if MARKED_FILES.get(norm) == kind and norm.endswith(suffix) else None


def _under(rel: str, prefix: str) -> bool:
    return rel == prefix or rel.startswith(prefix + os.sep)


def check_policy(before: dict, after: dict, target: str | None, allowed: str | None, what: str) -> None:
    """Existing entries unchanged except inside ``allowed``; new entries only at the target, in runs/ or run/."""
    new_target = os.path.normpath(target) if target and target not in before else None
    bad = []
    for rel in sorted(set(before) | set(after)):
        if before.get(rel) == after.get(rel):
            continue
        if allowed and _under(rel, allowed):
            continue
        if rel == os.path.join("run", ".cnnlab-run"):
            continue  # explain and report hold the run they read (the marker records the holder's PID)
        if rel in before and before[rel][0] == "dir" and rel in after:
            continue  # a folder's mtime is not compared (its entries are)
        added = rel not in before
        if added and (_under(rel, "runs") or _under(rel, "run") or (new_target and (_under(rel, new_target)
                                                                                   or _under(new_target, rel)))):
            continue
        bad.append(f"{rel} ({'added' if added else 'removed' if rel not in after else 'changed'})")
    assert not bad, f"{what}: the output policy was broken: {bad[:12]}"


def run_policy_case(template: Path, argv: list[str], target: str | None, allowed: str | None,
                    label: str, prepare=None) -> harness.Outcome:
    harness.count(label)
    case = harness.new_case(template)
    try:
        if prepare is not None:
            prepare(case.sandbox)
        before = harness.snapshot(case.sandbox)
        outside = sorted(os.listdir(case.root))
        outcome = harness.run_isolated(harness.cli_call(argv), case, env=child_env(case))
        after = harness.snapshot(case.sandbox)
        what = f"cnnlab {argv!r}"[:1500]
        harness.check_cli(outcome, argv)
        assert sorted(os.listdir(case.root)) == outside, f"{what}: wrote beside the sandbox"
        check_policy(before, after, target, allowed, what)
        return outcome
    finally:
        harness.remove_case(case)


@examples(24)
@given(name=st.sampled_from(sorted(COMMANDS)), target=st.sampled_from(TARGETS), overwrite=st.booleans())
@example(name="explain", target="run", overwrite=True)  # replaced the very run it explains
@example(name="sweep", target="out-train", overwrite=True)  # replaced a training run
@example(name="features", target="out-train", overwrite=True)
@example(name="scenes", target="out-train", overwrite=True)
@example(name="train", target="out-sweep", overwrite=True)  # replaced a whole sweep
@example(name="train", target="out-sweep/trials/0000", overwrite=True)  # a sweep's trial on its own
@example(name="torchscript", target="run/final.pt", overwrite=True)  # the run's own checkpoint
@example(name="onnx", target="run/config.yaml", overwrite=True)
@example(name="onnx", target="notes.txt", overwrite=True)
@example(name="filters", target="img.png", overwrite=False)  # a user's PNG, replaced without --overwrite
@example(name="report", target="m-report.html", overwrite=True)  # its own kind: replaced
@example(name="filters", target="out-explain/figure-0.png", overwrite=True)  # an explanation's own figure
@example(name="train", target="o/../out-sweep", overwrite=True)  # made o/, then met out-sweep unchecked
@example(name="train", target="run", overwrite=True)  # a training run of its own kind: replaced
def test_out_and_overwrite_across_commands(outputs_template, name, target, overwrite):
    argv, kind, suffix = COMMANDS[name]
    argv = [*argv, "--out", target] + (["--overwrite"] if overwrite else [])
    allowed = replaceable(target, kind, suffix) if overwrite else None
    run_policy_case(outputs_template, argv, target, allowed, "outputs.out-overwrite")


EVIL_NAMES = ["../escape", "../../../elsewhere", "a/b", "/abs/olute", "..", ".", ".hidden", "x\\y", "tab\tname",
              "ok-name", "dots..inside", "a/../b"]


@examples(8)
@given(command=st.sampled_from(["train", "ablate", "cv", "bagging", "sweep"]), name=st.sampled_from(EVIL_NAMES))
@example(command="train", name="../../../elsewhere")
@example(command="sweep", name="../escape")
def test_names_are_never_paths(outputs_template, command, name):
    """A config's or spec's name with path parts, no --out: nothing is written outside runs/."""
    import yaml

    def prepare(sandbox: Path) -> None:
        spec = yaml.safe_load((sandbox / "tiny-sweep.yaml").read_text())
        spec["name"] = name
        (sandbox / "evil-sweep.yaml").write_text(yaml.safe_dump(spec))

    argv = {"train": ["train", "tiny.yaml", *FOLDER, "--quiet"],
            "ablate": ["ablate", "tiny.yaml", "--techniques", "normalization", "--quiet", *FOLDER],
            "cv": ["cv", "tiny.yaml", "--folds", "2", "--quiet", *FOLDER],
            "bagging": ["ensemble", "--bagging", "2", "tiny.yaml", "--quiet", *FOLDER],
            "sweep": ["sweep", "evil-sweep.yaml", "--trials", "1", "--quiet", *FOLDER]}[command]
    if command != "sweep":
        argv = [*argv, f"name={name}"]
    run_policy_case(outputs_template, argv, None, None, "outputs.names", prepare=prepare)
