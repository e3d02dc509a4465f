"""Fuzz-suite settings, the shared sandbox template, and the count of inputs tried.

Profiles (Hypothesis settings):

- ``ci`` (default, run by ``make test``): a bounded number of examples, derandomized so every
  CI run tries the same inputs, no example database (nothing is written to the repository);
- ``long`` (``make fuzz``): ten times the examples from random seeds.

Choose one with ``--hypothesis-profile NAME`` or ``CNNLAB_FUZZ_PROFILE=NAME`` (the Makefile
sets the latter). Each test states its example count for ``ci``; ``long`` multiplies it.

The count of inputs tried is reported by tests/fuzz/report.py (loaded from tests/conftest.py,
because under pytest-xdist the controller process never imports this file).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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
