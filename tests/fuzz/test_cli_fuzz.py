"""Random argument lists for every ``cnnlab`` sub-command, run through ``cnnlab.cli.main``.

Each list is built from the sub-command's real options (see strategies.cli_args) and
runs in a fresh copy of the sandbox (world.py). The properties (cli_cases.run_cli_case):
exit code 0, 1, 2 or 130; no traceback on stderr or stdout; at most one ``error:`` line,
the last one, under 500 characters; nothing outside the named outputs changed; no user
file removed or rewritten.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.cli_cases import run_cli_case
from tests.fuzz.harness import examples
from tests.fuzz.strategies import JUNK, OUTPUT_PATHS, cli_args, safe_text, typed_override
from tests.fuzz.world import TINY_TRAIN

FOLDER_TINY = TINY_TRAIN + ["data.root=images", "data.image_size=16", "model.blocks=2", "model.filters=4"]


@examples(30)
@given(argv=st.sampled_from([TINY_TRAIN, FOLDER_TINY]).flatmap(lambda extra: cli_args(("train",), tuple(extra))))
def test_train(template, argv):
    run_cli_case(template, argv, "cli.train")


@examples(30)
@given(preset=st.sampled_from(["tiny.yaml", "mnist-fast", "mnist-classic", "fashion-convnet", "folder-convnet"]),
       overrides=st.lists(typed_override(), min_size=1, max_size=2),
       out=st.one_of(st.none(), st.sampled_from(OUTPUT_PATHS)), overwrite=st.booleans(), data=st.data())
def test_train_typed_overrides(template, preset, overrides, out, overwrite, data):
    """A run that gets past parsing: a preset, tiny data, one or two overrides of the right type."""
    extra = FOLDER_TINY if preset in ("folder-convnet", "tiny.yaml") else TINY_TRAIN
    argv = ["train", preset, *extra, *overrides] + (["--out", out] if out is not None else [])
    argv += ["--overwrite"] if overwrite else []
    argv += data.draw(st.sampled_from([[], ["--quiet"], ["--json"]]))
    run_cli_case(template, argv, "cli.train.typed")


@examples(15)
@given(argv=cli_args(("eval",)))
def test_eval(template, argv):
    run_cli_case(template, argv, "cli.eval")


@examples(15)
@given(argv=cli_args(("predict",)))
def test_predict(template, argv):
    run_cli_case(template, argv, "cli.predict")


@examples(20)
@given(argv=cli_args(("profile",)))
def test_profile(template, argv):
    run_cli_case(template, argv, "cli.profile")


@examples(12)
@given(argv=cli_args(("data", "info")))
def test_data_info(template, argv):
    run_cli_case(template, argv, "cli.data.info")


@examples(12)
@given(argv=cli_args(("data", "preview")))
def test_data_preview(template, argv):
    run_cli_case(template, argv, "cli.data.preview")


@examples(15)
@given(argv=cli_args(("scratch", "train")))
def test_scratch_train(template, argv):
    run_cli_case(template, argv, "cli.scratch.train")


@examples(6)
@given(argv=cli_args(("bench", "conv")).map(lambda a: a + ["--quick"]))
def test_bench_conv(template, argv):
    # --quick always: the full benchmark legitimately runs for minutes.
    run_cli_case(template, argv, "cli.bench.conv")


@examples(6)
@given(argv=cli_args(("bench", "train"), tuple(TINY_TRAIN)))
def test_bench_train(template, argv):
    run_cli_case(template, argv, "cli.bench.train")


@examples(12)
@given(argv=st.one_of(cli_args(("presets",)), cli_args(("models",))))
def test_presets_and_models(template, argv):
    run_cli_case(template, argv, "cli.presets.models")


COMMAND_WORDS = ["train", "eval", "predict", "presets", "models", "data", "profile", "scratch", "bench", "info",
                 "preview", "conv", "nosuch", "--version", "--help", "-h", ""]


@examples(12)
@given(argv=st.lists(st.one_of(st.sampled_from(COMMAND_WORDS), st.sampled_from(JUNK), safe_text), max_size=4))
def test_any_arguments(template, argv):
    run_cli_case(template, argv, "cli.any")
