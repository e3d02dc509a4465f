"""Running one generated input safely, and the properties every input must satisfy.

Each input runs in a forked copy of the test process (``run_isolated``): the
child calls the library or ``cnnlab.cli.main(argv)`` directly (no interpreter
start-up, so an input costs milliseconds), with its own working directory,
``$HOME``, temporary directory, a memory ceiling and a time limit. A child
that segfaults, aborts inside an OpenMP runtime, allocates tens of gigabytes
or runs for minutes is then a failed property with a clear description
instead of a dead or frozen test worker.

The child also refuses to delete anything outside its case directory (a guard
around ``shutil.rmtree`` and ``os.unlink``): the fuzzer generates ``--out``
and ``--overwrite``, and the machine's own files must never be at stake.
"""

from __future__ import annotations

import collections
import faulthandler
import io
import os
import pickle
import re
import resource
import select
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# Inputs tried per target in this process; conftest.py adds them up across xdist workers.
COUNTS: collections.Counter = collections.Counter()

# Per-input limits. Fixed code answers every input in well under a second; the limits only
# turn today's hangs and memory blow-ups into readable failures.
TIMEOUT_S = float(os.environ.get("CNNLAB_FUZZ_TIMEOUT", "60"))
MEMORY_MB = int(os.environ.get("CNNLAB_FUZZ_MEMORY_MB", "3072"))  # on top of the test process's own

MAX_ERROR_CHARS = 500
# "cnnlab: error: ..." from main(), "cnnlab train: error: ..." from argparse.
ERROR_LINE = re.compile(r"^cnnlab(?: [^\n]*?)?: error:")


CI_SCALE = 100  # max_examples of the ci profile; a test's own count is relative to it


def examples(ci_count: int):
    """Settings for a test that tries ``ci_count`` inputs under the ci profile (10x under long)."""
    from hypothesis import settings

    return settings(max_examples=max(1, round(ci_count * settings.default.max_examples / CI_SCALE)))


def count(target: str) -> None:
    COUNTS[target] += 1


@dataclass
class Outcome:
    """What one input did: how the call ended, what it printed, and where an exception came from."""

    kind: str  # return | system_exit | exception | died | timeout
    value: Any = None  # the return value (a short repr for library calls) or the SystemExit code
    exc_type: str = ""
    exc_message: str = ""
    is_cnnlab_error: bool = False
    where: str = ""  # innermost cnnlab frame of an exception: "src/cnnlab/config.py:_build"
    traceback: str = ""
    stdout: str = ""
    stderr: str = ""  # what Python code wrote to sys.stderr
    raw_output: str = ""  # what reached file descriptors 1 and 2 directly (C libraries, faulthandler)
    signal: int | None = None
    exit_status: int | None = None
    guard: list[str] = field(default_factory=list)  # deletions outside the case directory, refused
    seconds: float = 0.0

    def signature(self) -> str:
        """How the call ended and where, for grouping failures: "exception KeyError at src/cnnlab/..."."""
        if self.kind == "exception":
            return f"exception {self.exc_type} at {self.where}"
        if self.kind == "died":
            how = signal.Signals(self.signal).name if self.signal else f"exit status {self.exit_status}"
            return f"died ({how}) at {crash_site(self.raw_output)}"
        if self.kind == "timeout":
            return f"timeout at {crash_site(self.raw_output)}"
        return f"{self.kind} {self.value!r}"

    def describe(self) -> str:
        """A short account for an assertion message."""
        lines = [f"outcome {self.kind} after {self.seconds:.2f}s"]
        if self.kind == "exception":
            lines.append(f"{self.exc_type}: {_clip(self.exc_message, 300)} (raised in {self.where})")
            lines.append(_clip(self.traceback, 3000, tail=True))
        if self.kind in ("return", "system_exit"):
            lines.append(f"value {self.value!r}")
        if self.signal:
            lines.append(f"killed by {signal.Signals(self.signal).name}")
        if self.exit_status is not None:
            lines.append(f"child exited with status {self.exit_status} without finishing the call")
        if self.guard:
            lines.append(f"tried to delete outside its sandbox: {self.guard}")
        if self.stderr:
            lines.append("stderr: " + _clip(self.stderr, 2000, tail=True))
        if self.raw_output.strip():
            lines.append("raw fd output: " + _clip(self.raw_output, 2000, tail=True))
        return "\n".join(lines)


def crash_site(raw: str) -> str:
    """The innermost cnnlab frame of a faulthandler dump (it lists the most recent call first)."""
    for match in re.finditer(r'File "([^"]+)", line (\d+) in (\S+)', raw):
        path = match.group(1).replace(os.sep, "/")
        if "/cnnlab/" in path and "/tests/" not in path:
            return "src/cnnlab/" + path.rsplit("/cnnlab/", 1)[1] + ":" + match.group(3)
    return "?"


def _clip(text: str, limit: int, tail: bool = False) -> str:
    if len(text) <= limit:
        return text
    return ("..." + text[-limit:]) if tail else (text[:limit] + "...")


# ----------------------------------------------------------------------------- the case directory


@dataclass
class Case:
    """One input's world: ``sandbox`` (the working directory, snapshotted), ``home`` and ``tmp``."""

    root: Path
    sandbox: Path
    home: Path
    tmp: Path


def new_case(template: Path | None = None) -> Case:
    """A fresh case directory; ``template`` (a sandbox tree) is copied in, symlinks kept as links."""
    root = Path(tempfile.mkdtemp(prefix="fuzzcase-"))
    sandbox = root / "sandbox"
    if template is not None:
        shutil.copytree(template, sandbox, symlinks=True)
    else:
        sandbox.mkdir()
    (root / "home").mkdir()
    (root / "tmp").mkdir()
    return Case(root, sandbox, root / "home", root / "tmp")


def remove_case(case: Case) -> None:
    # Generated inputs may leave read-only files or directories behind; make them removable.
    for dirpath, dirnames, _ in os.walk(case.root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)
    shutil.rmtree(case.root, ignore_errors=True)


# ----------------------------------------------------------------------------- running one input


def _guard_deletions(allowed_root: Path, refused: list[str]) -> None:
    """Make deleting anything outside ``allowed_root`` raise (in the child only)."""
    root = os.path.realpath(allowed_root)

    def inside(path) -> bool:
        try:
            real = os.path.realpath(os.fspath(path))
        except (TypeError, ValueError):
            return True  # not a path: let the real function raise its own error
        return real == root or real.startswith(root + os.sep)

    def wrap(fn):
        def guarded(path, *args, **kwargs):
            if kwargs.get("dir_fd") is None and not isinstance(path, int) and not inside(path):
                refused.append(os.fspath(path))
                raise PermissionError(f"fuzz guard: refusing to delete {path} outside the sandbox")
            return fn(path, *args, **kwargs)

        return guarded

    original_rmtree = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if not inside(path):
            refused.append(os.fspath(path))
            raise PermissionError(f"fuzz guard: refusing to delete {path} outside the sandbox")
        return original_rmtree(path, *args, **kwargs)

    shutil.rmtree = rmtree
    os.unlink = wrap(os.unlink)
    os.remove = wrap(os.remove)
    os.rmdir = wrap(os.rmdir)


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _innermost_cnnlab_frame(tb) -> str:
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        path = frame.filename.replace(os.sep, "/")
        if "/cnnlab/" in path and "/tests/" not in path:
            return "src/cnnlab/" + path.rsplit("/cnnlab/", 1)[1] + ":" + frame.name
    last = frames[-1] if frames else None
    return f"{last.filename}:{last.name}" if last else "?"


def _child(fn: Callable[[], Any], case: Case, env: dict[str, str], write_fd: int, raw_fd: int,
           timeout: float) -> None:
    """Runs in the forked child: set the world up, call ``fn``, send the outcome, exit."""
    os.setpgid(0, 0)
    os.dup2(raw_fd, 1)
    os.dup2(raw_fd, 2)
    dump = os.fdopen(os.dup(raw_fd), "w")
    faulthandler.enable(file=dump, all_threads=False)
    # A run about to be killed for time leaves its stack, so the report can say where it hung.
    faulthandler.dump_traceback_later(max(0.5, timeout - 1.0), file=dump)
    out, err = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = out, err
    sys.stdin = io.StringIO("")
    refused: list[str] = []
    result: dict[str, Any] = {}
    try:
        os.environ.update(env)
        os.environ["HOME"] = str(case.home)
        os.environ["TMPDIR"] = str(case.tmp)
        tempfile.tempdir = str(case.tmp)
        os.chdir(case.sandbox)
        _guard_deletions(case.root, refused)
        vm = _vm_size_bytes()
        if vm:
            limit = vm + MEMORY_MB * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            value = fn()
            result = {"kind": "return", "value": value}
        except SystemExit as exc:
            result = {"kind": "system_exit", "value": exc.code}
        except BaseException as exc:  # noqa: BLE001 - every escape is what we are looking for
            from cnnlab.errors import CnnlabError

            result = {"kind": "exception", "exc_type": type(exc).__name__, "exc_message": str(exc),
                      "is_cnnlab_error": isinstance(exc, CnnlabError),
                      "where": _innermost_cnnlab_frame(exc.__traceback__),
                      "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}
        result.update(stdout=out.getvalue(), stderr=err.getvalue(), guard=refused)
        try:
            payload = pickle.dumps(result)
        except Exception:  # an unpicklable return value: keep its repr
            result["value"] = repr(result.get("value"))[:1000]
            payload = pickle.dumps(result)
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
    finally:
        os._exit(0)


def call_in_process(fn: Callable[[], Any]) -> Outcome:
    """Call ``fn()`` here (for fast targets that write nothing) and report how it ended."""
    start = time.monotonic()
    try:
        value = fn()
        return Outcome("return", value=repr(value)[:1000], seconds=time.monotonic() - start)
    except SystemExit as exc:
        return Outcome("system_exit", value=exc.code, seconds=time.monotonic() - start)
    except Exception as exc:  # noqa: BLE001 - every escape is what we are looking for
        from cnnlab.errors import CnnlabError

        return Outcome("exception", exc_type=type(exc).__name__, exc_message=str(exc),
                       is_cnnlab_error=isinstance(exc, CnnlabError), where=_innermost_cnnlab_frame(exc.__traceback__),
                       traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                       seconds=time.monotonic() - start)


def run_isolated(fn: Callable[[], Any], case: Case, env: dict[str, str] | None = None,
                 timeout: float | None = None) -> Outcome:
    """Call ``fn()`` in a forked child inside ``case`` and report how it ended."""
    timeout = TIMEOUT_S if timeout is None else timeout
    raw = tempfile.TemporaryFile()
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_fd)
        _child(fn, case, env or {}, write_fd, raw.fileno(), timeout)
    os.close(write_fd)
    chunks, timed_out = [], False
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    if timed_out:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    os.close(read_fd)
    seconds = time.monotonic() - start
    raw.seek(0)
    raw_text = raw.read().decode("utf-8", "replace")
    raw.close()
    if timed_out:
        return Outcome("timeout", raw_output=raw_text, seconds=seconds)
    data = b"".join(chunks)
    if not data:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        return Outcome("died", signal=sig, exit_status=code, raw_output=raw_text, seconds=seconds)
    result = pickle.loads(data)
    return Outcome(raw_output=raw_text, seconds=seconds, **result)


# ----------------------------------------------------------------------------- properties


def check_library(outcome: Outcome, what: str) -> None:
    """A library call returns, or raises CnnlabError with one line under 500 characters; nothing else."""
    assert outcome.kind in ("return", "exception"), f"{what}: {outcome.describe()}"
    assert not outcome.guard, f"{what}: {outcome.describe()}"
    if outcome.kind == "exception":
        assert outcome.is_cnnlab_error, f"{what} raised {outcome.exc_type}, not CnnlabError:\n{outcome.describe()}"
        check_message(outcome.exc_message, what)


def check_message(message: str, what: str) -> None:
    assert "\n" not in message and "\r" not in message, f"{what}: error message spans lines: {message[:600]!r}"
    assert len(message) < MAX_ERROR_CHARS, (
        f"{what}: error message has {len(message)} characters (limit {MAX_ERROR_CHARS}): {message[:300]!r}...")


def cli_call(argv: list[str]) -> Callable[[], Any]:
    """The child's work for a CLI input: ``main(argv)`` and its return code."""

    def call():
        from cnnlab.cli import main

        return main(list(argv))

    return call


def exit_code(outcome: Outcome) -> int | None:
    if outcome.kind == "return":
        return outcome.value if isinstance(outcome.value, int) else None
    if outcome.kind == "system_exit":
        value = outcome.value
        if value is None:
            return 0
        return value if isinstance(value, int) else 1  # SystemExit("text") exits 1
    return None


def check_cli(outcome: Outcome, argv: list[str]) -> None:
    """Exit 0/1/2/130, no traceback anywhere, at most one error line, last, under 500 characters."""
    what = f"cnnlab {' '.join(argv)!r}"[:2000]
    assert outcome.kind in ("return", "system_exit"), f"{what}:\n{outcome.describe()}"
    assert not outcome.guard, f"{what}:\n{outcome.describe()}"
    code = exit_code(outcome)
    assert code in (0, 1, 2, 130), f"{what}: exit code {outcome.value!r}:\n{outcome.describe()}"
    for stream, text in (("stderr", outcome.stderr), ("stdout", outcome.stdout), ("fd 1/2", outcome.raw_output)):
        assert "Traceback" not in text, f"{what}: traceback on {stream}:\n{outcome.describe()}"
    lines = outcome.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if ERROR_LINE.match(line)]
    assert len(errors) <= 1, f"{what}: {len(errors)} error lines:\n{outcome.describe()}"
    if errors:
        line = lines[errors[0]]
        assert len(line) < MAX_ERROR_CHARS, (
            f"{what}: error line has {len(line)} characters (limit {MAX_ERROR_CHARS}): {line[:300]!r}...")
        after = [x for x in lines[errors[0] + 1:] if x.strip()]
        assert not after, f"{what}: the error continues over {len(after) + 1} lines:\n{outcome.describe()}"


# ----------------------------------------------------------------------------- "nothing else changed"


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (not following links): type, size, mtime and mode of files."""
    entries: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            rel = os.path.relpath(path, root)
            if stat.S_ISLNK(st.st_mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                entries[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                entries[rel] = ("file", st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return entries


def allowed_prefixes(sandbox: Path, outputs: list[str]) -> list[str]:
    """Sandbox-relative paths a command was told to write, as given and with symlinks resolved."""
    prefixes = []
    real_sandbox = os.path.realpath(sandbox)
    for value in outputs:
        if not value:
            continue
        joined = os.path.normpath(os.path.join(sandbox, value))
        for candidate in (joined, os.path.realpath(joined)):
            rel = os.path.relpath(candidate, real_sandbox if candidate.startswith(real_sandbox) else sandbox)
            if not rel.startswith(".."):
                prefixes.append(rel)
    return prefixes


def _under(rel: str, prefix: str) -> bool:
    return prefix == "." or rel == prefix or rel.startswith(prefix + os.sep)


def check_unchanged(before: dict, after: dict, sandbox: Path, outputs: list[str], what: str) -> None:
    """Only the named outputs (and directories created on the way to them) may differ."""
    prefixes = allowed_prefixes(sandbox, outputs)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    bad = []
    for rel in changed:
        if any(_under(rel, p) for p in prefixes):
            continue
        created_dir = rel not in before and after.get(rel, ("",))[0] == "dir"
        if created_dir and any(_under(p, rel) for p in prefixes):
            continue  # a parent directory made for the output (mkdir -p)
        kind = "removed" if rel not in after else ("added" if rel not in before else "changed")
        bad.append(f"{rel} ({kind})")
    assert not bad, f"{what}: files outside the named outputs {outputs or '(none)'} changed: {bad[:20]}"
