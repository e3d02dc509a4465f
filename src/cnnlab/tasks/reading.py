"""How the read commands (``cnnlab eval``, ``predict``, a video, :class:`cnnlab.api.Run`) use a task's runs.

A :class:`RunReader` is the read side of a task, kept apart from the :class:`~cnnlab.tasks.base.Task`
so that reading stays light: this module and the readers' modules import nothing heavy at
their top (``cnnlab predict MODEL.onnx`` never loads torch). The commands ask the run's reader
what to do and never name a task; a task's reader declares which of a command's options its
runs take, so an option meant for another task's runs is one line naming who takes it:

>>> from cnnlab.tasks import get_reader
>>> reader = get_reader("detect")
>>> reader.options["eval"]
{'score_threshold': '--score-threshold', 'iou_threshold': '--iou-threshold'}
>>> reader.take_options("eval", {"tta": "flip", "score_threshold": None}, "runs/scenes")
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: --tta applies to classification runs only; a detection run is evaluated without test-time augmentation (drop --tta)
"""

from __future__ import annotations

from typing import Any

import importlib

from cnnlab.errors import CnnlabError, did_you_mean

# Every task's read side: name -> the module that registers its RunReader (light: no torch at import).
READERS = {"classify": "cnnlab.classify.reading", "detect": "cnnlab.detect.reading"}


class RunReader:
    """The read side of one task: options, evaluation, prediction and their text (subclass per task)."""

    task = "task"
    runs_name = "runs"  # plural, for messages: "detection runs"
    run_kind = "a run"  # singular, with its article: "an object-detection run"
    read_commands = "cnnlab eval, predict, profile"  # the commands that read its runs (for refusals)
    # command -> {argparse dest: the flag as a message shows it ("{value}" is replaced by the value given)}
    options: dict[str, dict[str, str]] = {}
    # command -> {dest of another task's option: what this task's runs do instead (the refusal's reason)}
    instead: dict[str, dict[str, str]] = {}
    predicts = "classes"  # what predict returns per image: "classes" (top-k) or "boxes"
    explains = True  # whether attribution methods apply (a class score to explain)
    exports = True  # whether cnnlab export applies
    tracks = False  # whether its predictions are boxes a tracker can link over video frames

    def take_options(self, command: str, values: dict[str, Any], run: Any) -> dict[str, Any]:
        """The values of ``command``'s task-specific options that this task's runs take.

        ``values`` holds every task-specific option of the command (None or False: not given).
        One given that only another task's runs take is refused, naming that task's runs and why.
        """
        own = self.options.get(command, {})
        for other in all_readers():
            for dest, flag in other.options.get(command, {}).items():
                value = values.get(dest)
                if dest in own or value is None or value is False:
                    continue
                why = self.instead.get(command, {}).get(dest) or f"{run} is {self.run_kind}"
                raise CnnlabError(f"{flag.format(value=value)} applies to {other.runs_name} only; {why}")
        return {dest: values.get(dest) for dest in own}

    def refuse(self, what: str) -> CnnlabError:
        """The one-line error for a command that does not apply to this task's runs."""
        return CnnlabError(f"{what} does not apply to {self.runs_name} ({self.task} runs: {self.read_commands})")

    # ------------------------------------------------------------------ cnnlab profile CONFIG

    def model_input(self, cfg) -> tuple[tuple[int, int, int], int] | None:
        """(input size, number of classes) of the model ``cfg`` builds, known without reading its data
        (None: only the data says, so ``cnnlab profile`` takes the model's name instead)."""
        return None

    def model_name(self, cfg) -> str:
        """How ``cnnlab profile CONFIG`` names the model a config builds."""
        return cfg.model.name

    # ------------------------------------------------------------------ cnnlab eval

    def evaluate(self, run_dir, *, data_dir: str | None = None, weights: str | None = None, **options) -> dict:
        """Score the run's test split (writes eval.json and the figures into the run) and return the record."""
        raise self.refuse("cnnlab eval")

    def evaluation_text(self, result: dict) -> tuple[list[str], str]:
        """What ``cnnlab eval`` prints for ``result`` (stdout lines) and its notice (the files written)."""
        return [str(result)], ""

    # ------------------------------------------------------------------ cnnlab predict

    def predict(self, run_dir, paths: list[str], **options) -> list[dict]:
        """One record per image file, as ``cnnlab predict RUN FILES --json`` lists them."""
        raise self.refuse("cnnlab predict")

    def predictions_json(self, run_dir, results: list[dict]) -> dict:
        """The object ``cnnlab predict --json`` prints."""
        return {"run_dir": str(run_dir), "predictions": results}

    def prediction_text(self, results: list[dict], options: dict[str, Any]) -> tuple[list[str], str | None]:
        """What ``cnnlab predict`` prints (stdout lines) and its notice (None: none)."""
        return [str(r) for r in results], None

    # ------------------------------------------------------------------ a video

    def frame_model(self, source: str, *, k: int = 3, **options):
        """The model a video runs on each batch of frames (:mod:`cnnlab.video.models`)."""
        raise self.refuse("a video")


_READERS: dict[str, RunReader] = {}


def register_reader(name: str):
    """``@register_reader("segment")`` on a :class:`RunReader` subclass: how the read commands use its runs."""

    def add(cls: type[RunReader]) -> type[RunReader]:
        if name in _READERS:
            raise CnnlabError(f"a reader for task {name!r} is already registered")
        cls.task = name
        _READERS[name] = cls()
        return cls

    return add


def get_reader(name: str) -> RunReader:
    """The read side of task ``name`` (its module is imported on first use)."""
    if name not in _READERS and name in READERS:
        importlib.import_module(READERS[name])
    if name not in _READERS:
        raise CnnlabError(f"no task named {name!r}; {did_you_mean(name, sorted(set(READERS) | set(_READERS)))}")
    return _READERS[name]


def all_readers() -> list[RunReader]:
    """Every task's reader (for the options only other tasks' runs take)."""
    return [get_reader(name) for name in sorted(set(READERS) | set(_READERS))]
