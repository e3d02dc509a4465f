"""The read side of each task (issue 19): eval, predict, profile and a video ask the run's reader what to do
and never name a task, so a new task's runs are read without editing a command."""

from __future__ import annotations

import argparse
import ast
import doctest
import importlib
from pathlib import Path

import pytest

import cnnlab
from cnnlab.cli import build_parser
from cnnlab.errors import CnnlabError
from cnnlab.tasks import READERS, RunReader, all_readers, get_reader, task_names
from cnnlab.tasks import reading
from tests.cli_checks import cli, one_line

SRC = Path(cnnlab.__file__).parent

# Options of a read command that every task's runs take (the rest must be declared by a reader).
COMMON = {
    "eval": {"help", "run_dir", "data_dir", "weights", "json", "folder", "out", "overwrite", "func", "command"},
    "predict": {"help", "run_dir", "images", "json", "func", "command"},
}
VIDEO_OPTIONS = {"video", "every", "start", "duration", "batch", "track", "count_line", "count_region", "fps",
                 "mot_gt", "threads", "counts", "tracker"}  # a video's own options (cnnlab.commands._video)


def _dests(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest for a in sub.choices[command]._actions} | set(sub.choices[command]._defaults)


def test_every_task_has_a_reader_and_the_reader_names_its_runs():
    assert sorted(READERS) == task_names()
    for reader in all_readers():
        assert reader.task in task_names() and reader.runs_name.endswith("runs") and reader.run_kind.startswith("a")


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_every_task_specific_option_of_a_read_command_is_declared_by_a_reader(command):
    declared = set().union(*(r.options.get(command, {}) for r in all_readers()))
    specific = _dests(command) - COMMON[command] - (VIDEO_OPTIONS if command == "predict" else set())
    # A new option of `cnnlab eval`/`predict` is either common or taken by some task's runs: none escapes.
    assert specific == declared, (specific - declared, declared - specific)


def test_an_option_only_another_tasks_runs_take_is_refused_naming_them():
    with pytest.raises(CnnlabError) as info:
        get_reader("classify").take_options("eval", {"score_threshold": 0.3}, "runs/m")
    assert str(info.value) == "--score-threshold applies to detection runs only; runs/m is a classification run"
    assert get_reader("detect").take_options("eval", {"score_threshold": 0.3, "tta": None}, "r") == \
        {"score_threshold": 0.3, "iou_threshold": None}


class _CountsReader(RunReader):
    """A made-up task whose runs are 'evaluated' by counting their files: proves the commands dispatch."""

    runs_name = "counting runs"
    run_kind = "a counting run"
    options = {"eval": {"top": "--top"}}

    def evaluate(self, run_dir, *, data_dir=None, weights=None, top=None):
        return {"files": len(list(Path(run_dir).iterdir())), "top": top}

    def evaluation_text(self, result):
        return [f"{result['files']} files, top {result['top']}"], "counted"


@pytest.fixture
def counting_task(monkeypatch):
    monkeypatch.setitem(reading._READERS, "counting", _CountsReader())
    monkeypatch.setitem(READERS, "counting", "no.such.module")
    _CountsReader.task = "counting"
    return "counting"


def test_a_new_tasks_runs_are_evaluated_by_its_reader_without_editing_eval(counting_task, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("task: counting\n")
    code, out, err = cli(capsys, "eval", run, "--top", "3")
    assert code == 0 and out == "1 files, top 3\n" and "counted" in err
    code, _, err = cli(capsys, "eval", run, "--tta", "flip")  # a classifier's option, not this task's
    one_line(code, err, "--tta applies to classification runs only", "is a counting run")
    code, _, err = cli(capsys, "predict", run, run / "config.yaml")  # the reader has no predict
    one_line(code, err, "cnnlab predict does not apply to counting runs")


# The generic read side: modules that must not compare against a task's name or key a table by
# one (they ask the run's reader, or the dataset's task).
GENERIC = ["commands/eval.py", "commands/predict.py", "commands/profile.py", "commands/_video.py",
           "commands/data.py", "api/run.py", "video/models.py", "video/pipeline.py", "runs.py", "tasks/reading.py"]


REGISTRIES = {"tasks/reading.py"}  # READERS maps each task name to its reader's module: that table is the registry


@pytest.mark.parametrize("path", GENERIC)
def test_generic_read_code_does_not_branch_on_a_task_name(path):
    tree = ast.parse((SRC / path).read_text())
    names = set(task_names())
    def named(nodes):
        return any(isinstance(c, ast.Constant) and c.value in names for c in nodes)

    found = [node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.Compare) and named([node.left, *node.comparators])
             or isinstance(node, ast.Dict) and named(node.keys) and path not in REGISTRIES]
    assert found == [], f"{path} compares with a task name, or keys a table by one, at lines {found}"


@pytest.mark.parametrize("module", ["cnnlab.tasks.reading", "cnnlab.classify.reading", "cnnlab.detect.reading"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
