"""The fuzz figure: how many generated inputs a test session tried, summed over xdist workers.

Prints ``fuzz: N generated inputs, M targets`` in the terminal summary; with
``CNNLAB_FUZZ_RESULTS=DIR`` (set by ``make fuzz``) it also writes ``DIR/fuzz-<stamp>.json``.
These hooks are imported by tests/conftest.py: with ``pytest -n 2`` over all tests the
controller process only loads that conftest, not tests/fuzz/conftest.py.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fuzz import harness

_TOTALS: Counter = Counter()
_PROFILES: set[str] = set()


def _profile() -> str:
    from hypothesis import settings

    return settings.get_current_profile_name()


def pytest_sessionfinish(session):
    config = session.config
    if hasattr(config, "workeroutput"):  # an xdist worker: hand the counts to the controller
        config.workeroutput["fuzz_counts"] = json.dumps(dict(harness.COUNTS))
        config.workeroutput["fuzz_profile"] = _profile()
    elif harness.COUNTS:
        _TOTALS.update(harness.COUNTS)
        _PROFILES.add(_profile())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    output = getattr(node, "workeroutput", {}) or {}
    counts = json.loads(output.get("fuzz_counts") or "{}")
    if counts:
        _TOTALS.update(counts)
        _PROFILES.add(output.get("fuzz_profile", "?"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _TOTALS:
        return
    failed = sorted(r.nodeid for r in terminalreporter.stats.get("failed", []) if "tests/fuzz/" in r.nodeid)
    inputs, targets = sum(_TOTALS.values()), len(_TOTALS)
    profile = ",".join(sorted(_PROFILES))
    terminalreporter.write_line(
        f"fuzz: {inputs} generated inputs, {targets} targets (profile {profile}); {len(failed)} fuzz tests failed")
    out_dir = os.environ.get("CNNLAB_FUZZ_RESULTS")
    if out_dir:
        path = Path(config.rootpath) / out_dir / f"fuzz-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"profile": profile, "generated_inputs": inputs, "targets": dict(sorted(_TOTALS.items())),
                  "failed_tests": failed, "exit_status": int(exitstatus)}
        path.write_text(json.dumps(record, indent=2) + "\n")
        terminalreporter.write_line(f"fuzz: wrote {path}")
