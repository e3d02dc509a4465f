"""Fuzz-suite settings, the shared sandbox template, and the count of inputs tried.

Profiles (Hypothesis settings):

- ``ci`` (default, run by ``make test``): a bounded number of examples, derandomized so every
  CI run tries the same inputs, no example database (nothing is written to the repository);
- ``long`` (``make fuzz``): ten times the examples from random seeds.

Choose one with ``--hypothesis-profile NAME`` or ``CNNLAB_FUZZ_PROFILE=NAME`` (the Makefile
sets the latter). Each test states its example count for ``ci``; ``long`` multiplies it.

At the end of a session the terminal summary says how many generated inputs were tried
(``fuzz: N generated inputs, M targets``), added up over pytest-xdist workers; under
``make fuzz`` (``CNNLAB_FUZZ_RESULTS=DIR``) the figure is also written to
``DIR/fuzz-<stamp>.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz import harness
from tests.fuzz.harness import CI_SCALE

_COMMON = dict(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
)
settings.register_profile("ci", max_examples=CI_SCALE, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=10 * CI_SCALE, derandomize=False, **_COMMON)


def pytest_configure(config):
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile(os.environ.get("CNNLAB_FUZZ_PROFILE", "ci"))


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """The sandbox template (tiny datasets, a trained run, user files); see world.py."""
    import torch

    from tests.fuzz.world import build_template

    threads = torch.get_num_threads()
    path = build_template(tmp_path_factory.mktemp("fuzz-template"))
    torch.set_num_threads(threads)
    _preload()
    return path


def _preload() -> None:
    """Import what the commands import lazily, once, so each forked input starts warm."""
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for name in ("matplotlib.pyplot", "PIL.Image", "cnnlab.cli", "cnnlab.train.run", "cnnlab.data.datasets",
                 "cnnlab.report.evaluation", "cnnlab.report.curves", "cnnlab.report.plots", "cnnlab.predict",
                 "cnnlab.runs", "cnnlab.profile", "cnnlab.scratch.mnist", "cnnlab.bench.conv", "cnnlab.bench.train"):
        try:
            importlib.import_module(name)
        except ImportError:  # modules move between versions; a missing one is only slower
            pass
    from PIL import Image

    Image.init()
    from cnnlab.cli import build_parser

    build_parser()


# ----------------------------------------------------------------------------- counting inputs

_TOTALS: Counter = Counter()


def pytest_sessionfinish(session):
    config = session.config
    if hasattr(config, "workeroutput"):  # an xdist worker: hand the counts to the controller
        config.workeroutput["fuzz_counts"] = json.dumps(dict(harness.COUNTS))
    else:
        _TOTALS.update(harness.COUNTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    counts = getattr(node, "workeroutput", {}).get("fuzz_counts")
    if counts:
        _TOTALS.update(json.loads(counts))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _TOTALS:
        return
    failed = [r for r in terminalreporter.stats.get("failed", []) if "tests/fuzz/" in r.nodeid]
    inputs, targets = sum(_TOTALS.values()), len(_TOTALS)
    profile = settings.get_current_profile_name()
    terminalreporter.write_line(
        f"fuzz: {inputs} generated inputs, {targets} targets (profile {profile}); {len(failed)} fuzz tests failed")
    out_dir = os.environ.get("CNNLAB_FUZZ_RESULTS")
    if out_dir:
        path = Path(config.rootpath) / out_dir / f"fuzz-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"profile": profile, "generated_inputs": inputs, "targets": dict(sorted(_TOTALS.items())),
                  "failed_tests": sorted(r.nodeid for r in failed), "exit_status": int(exitstatus)}
        path.write_text(json.dumps(record, indent=2) + "\n")
        terminalreporter.write_line(f"fuzz: wrote {path}")
