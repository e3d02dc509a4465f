"""Running one generated ``cnnlab`` argument list in a sandbox copy and checking every property."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Callable

from hypothesis import assume

from tests.fuzz import harness

# Commands whose --out names a file (a picture), not a run directory.
FILE_OUT_COMMANDS = {("data", "preview"), ("export",), ("explain", "filters"), ("explain", "activations"),
                     ("explain", "neurons"), ("explain", "predictions"), ("report",)}


def child_env(case: harness.Case) -> dict[str, str]:
    """The child's environment: the sandbox's datasets, never the network, a headless plotter."""
    return {"CNNLAB_DATA": str(case.sandbox / "data"), "CNNLAB_OFFLINE": "1", "MPLBACKEND": "Agg"}


def parse(argv: list[str]):
    """The namespace ``cnnlab`` would parse (None when argparse refuses the list)."""
    from cnnlab.cli import build_parser

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args, extra = build_parser().parse_known_args(argv)
    except SystemExit:
        return None, []
    return args, extra


def named_outputs(argv: list[str]) -> list[tuple[str, str]]:
    """(path, kind) of what the command was told to write: kind is dir, file or run."""
    args, extra = parse(argv)
    if args is None:
        return []
    command = tuple(v for v in (getattr(args, "command", None), getattr(args, "data_command", None),
                                getattr(args, "scratch_command", None), getattr(args, "bench_command", None),
                                getattr(args, "explain_command", None)) if v)
    outputs: list[tuple[str, str]] = []
    overrides = [o for o in list(getattr(args, "overrides", None) or []) + list(extra) if isinstance(o, str)]
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "data.cache_dir" and value.strip():
            outputs.append((value.strip().strip("'\""), "dir"))
    out = getattr(args, "out", None)
    video = command == ("predict",) and (getattr(args, "video", False) or any(
        str(i).lower().endswith((".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")) for i in args.images))
    if out is not None:  # an empty --out or --out-dir is the current directory
        outputs.append((out or ".", "file" if command in FILE_OUT_COMMANDS or video else "dir"))
    if video and (getattr(args, "counts", None) or (out and (args.count_line or args.count_region))):
        outputs.append((args.counts or str(Path(out).with_suffix(".counts.json")), "file"))
    if getattr(args, "out_dir", None) is not None:
        outputs.append((args.out_dir or ".", "dir"))
    if getattr(args, "plot", None):  # --plot '' draws nothing
        outputs.append((args.plot, "file"))
    if getattr(args, "resume", None):
        outputs.append((args.resume, "run"))
    if command == ("eval",) or (command == ("export",) and not out):  # export writes RUN_DIR/model.onnx
        outputs.append((args.run_dir, "run"))
    if command[:1] in (("explain",), ("report",)) and getattr(args, "run_dir", None) is not None:
        # they write into the run by default (explain/, report.html, PNGs); a bare `cnnlab explain` names no run
        outputs.append((args.run_dir, "run"))
    if command in (("train",), ("scratch", "train"), ("sweep",), ("ablate",), ("cv",), ("ensemble",), ("lr-find",)) \
            and not out and not getattr(args, "resume", None):
        outputs.append(("runs", "dir"))  # the default runs/<name>-<time>
    if command == ("sweep",) and getattr(args, "status", None):
        outputs.append((args.status, "run"))  # --status --html rewrites the sweep's plots and report
    return outputs


def uses_debug(argv: list[str]) -> bool:
    args, _ = parse(argv)
    return bool(args is not None and getattr(args, "debug", False))


def check_user_files(before: dict, after: dict, sandbox: Path, outputs: list[tuple[str, str]], what: str) -> None:
    """No file that was there before (outside the trained run) is removed or rewritten.

    The only exception is a file the command was told to write (``--out grid.png``).
    A directory named as an output may gain files, but the user's files in it stay.
    """
    files = {p for p, _ in outputs if _ == "file"}
    allowed = set(harness.allowed_prefixes(sandbox, sorted(files)))
    lost = []
    for rel, entry in before.items():
        if rel == "runlink" or rel == "run" or rel.startswith("run" + os.sep) or entry[0] == "dir":
            continue
        if rel in allowed:
            continue
        if after.get(rel) != entry:
            lost.append(f"{rel} ({'removed' if rel not in after else 'changed'})")
    assert not lost, f"{what}: the user's files were removed or changed: {lost[:20]}"


def run_cli_case(template: Path, argv: list[str], target: str,
                 prepare: Callable[[Path], None] | None = None) -> harness.Outcome:
    """Copy the sandbox, ``prepare`` it, run ``cnnlab argv`` in it, check every property."""
    assume(not uses_debug(argv))  # --debug asks for tracebacks on purpose
    harness.count(target)
    case = harness.new_case(template)
    try:
        if prepare is not None:
            prepare(case.sandbox)
        before = harness.snapshot(case.sandbox)
        outcome = harness.run_isolated(harness.cli_call(argv), case, env=child_env(case))
        after = harness.snapshot(case.sandbox)
        what = f"cnnlab {argv!r}"[:1500]
        harness.check_cli(outcome, argv)
        outputs = named_outputs(argv)
        harness.check_unchanged(before, after, case.sandbox, [p for p, _ in outputs], what)
        check_user_files(before, after, case.sandbox, outputs, what)
        return outcome
    finally:
        harness.remove_case(case)
