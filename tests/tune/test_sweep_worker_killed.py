"""A sweep worker killed by a signal: the error says so (not "its message is above", of which there is
none), the sweep exits 1 (a failed run, not bad input), still writes trials.csv, summary.json and
report.html for the trials that finished, and names `cnnlab sweep --resume DIR`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cnnlab

SRC = Path(cnnlab.__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def is_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"spawn_main" in cmdline and b"resource_tracker" not in cmdline


def test_a_worker_killed_by_a_signal_is_reported_and_the_sweep_keeps_its_outputs(tmp_path, make_spec):
    spec = make_spec(trials=3, overrides={"train.epochs": 20})
    out = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "sweep", str(spec), "--workers", "2", "--out", str(out),
                             "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        workers = [c for c in children(proc.pid) if is_worker(c)]
        trials = list((out / "trials").glob("*/metrics.jsonl")) if (out / "trials").is_dir() else []
        if len(workers) == 2 and trials:  # both workers alive and one trial training
            victim = workers[1]
        time.sleep(0.2)
    assert victim is not None, "the sweep's workers never started"
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    errors = [line for line in err.splitlines() if line.startswith("cnnlab: error:")]
    assert proc.returncode == 1 and len(errors) == 1, err[-3000:]
    line = errors[0]
    assert "was killed by signal SIGKILL" in line and "message is above" not in line, line
    assert f"cnnlab sweep --resume {out}" in line, line
    for name in ("trials.csv", "summary.json", "report.html"):
        assert (out / name).is_file(), name
