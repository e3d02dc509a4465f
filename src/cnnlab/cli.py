"""The ``cnnlab`` command: thin; it parses arguments and calls the library.

Each sub-command lives in ``cnnlab/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func``; the CLI
finds the modules itself. Commands
import torch and friends inside ``func`` so ``cnnlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import cnnlab.commands
from cnnlab.commands.common import OneLineParser
from cnnlab.errors import MAX_LINE, CnnlabError, one_line
from cnnlab.version import __version__

# Sub-commands listed first in ``--help``; any other module in cnnlab/commands
# that has ``register`` follows alphabetically, so adding a command is adding a file.
PREFERRED_ORDER = ("train", "eval", "predict", "presets", "models", "data", "profile", "scratch", "bench")


def command_modules() -> list[str]:
    """Names of the modules in ``cnnlab.commands`` that define a sub-command."""
    found = {m.name for m in pkgutil.iter_modules(cnnlab.commands.__path__)
             if m.name != "common" and not m.name.startswith("_")}  # _name: a helper, not a command
    return [n for n in PREFERRED_ORDER if n in found] + sorted(found - set(PREFERRED_ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="cnnlab",
        description=(
            "A laboratory for convolutional neural networks on images. "
            "Train a preset with `cnnlab train mnist-fast`, then `cnnlab eval runs/<name>`."
        ),
        epilog="Run `cnnlab COMMAND --help` for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        module = importlib.import_module(f"cnnlab.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 failed run, 2 bad input)."""
    parser = build_parser()
    # key=value overrides may follow options (`cnnlab train p --out d train.epochs=2`), which
    # argparse cannot intermix with positionals; collect them here for commands that take them.
    args, extra = parser.parse_known_args(argv)
    if extra:
        stray = [e for e in extra if e.startswith("-") or "=" not in e]
        if stray or not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
        args.overrides = list(args.overrides or []) + extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`cnnlab models | head -1`): not an error of ours to
        # report; stop writing to the closed pipe so the interpreter's final flush stays quiet.
        _silence_stdout()
        return 1
    except (CnnlabError, OSError) as exc:  # a user mistake, or a file that cannot be read or written
        if args.debug:
            raise
        if getattr(exc, "every_rank", False) and _torchrun_rank() not in ("0", ""):
            # Every rank of a torchrun job met this (a config error): rank 0 prints it. The pause
            # lets it do so before torchrun, seeing this rank end first, stops the others.
            import time

            time.sleep(1.0)
            return 2
        after = _TORCHRUN_AFTER if _torchrun_rank() != "" else ""
        _report(f"cnnlab: error: {_one_line(exc, limit=MAX_LINE - len(after))}{after}")
        return getattr(exc, "exit_code", 2)  # 2: bad input; an error that says otherwise (a failed run: 1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if args.debug:
            raise
        after = _TORCHRUN_AFTER if _torchrun_rank() != "" else ""
        detail = _one_line(exc, limit=MAX_LINE - 120 - len(after))
        _report(f"cnnlab: error: internal error: {type(exc).__name__}: {detail}; "
                f"rerun with --debug for the traceback{after}")
        return 1
    return int(result or 0)


# The launcher prints its own multi-line report of the stopped ranks after ours.
_TORCHRUN_AFTER = "; torchrun's own report of the stopped processes follows"


def _report(line: str) -> None:
    """Print the error ``line`` to stderr, once per torchrun job when several ranks meet the same one.

    Under torchrun each local rank is a child of the same launcher; the first rank to claim the
    line (an empty marker file created exclusively, named by the line's hash, in a folder keyed by
    this launch, see :func:`_launch_key`) prints it, and a rank with the same line stays quiet. A
    line that differs (an error only one rank met) is printed by its rank. The markers are empty
    files in the temporary folder; they are left there, since removing one while another rank is
    about to claim it would print the line twice.
    """
    if _torchrun_rank() != "" and not _first_to_claim(line):
        return
    # one write with its newline: print() writes the two apart, and two ranks' lines sharing the
    # launcher's stderr could then run together (seen on a loaded CI machine)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _launch_key() -> str | None:
    """What the local ranks of one torchrun launch (and attempt) share and no other launch does.

    torchrun gives each rank an error file under a folder it made for this launch with mkdtemp
    (``<log dir>/<run id>_<random suffix>/attempt_<restart>/<local rank>/error.json``): the attempt folder is
    the key. Without one (``--log-dir /dev/null``): the launcher's pid with its start time (a pid
    alone comes back after reuse), run id, restart count and port. None when no torchrun agent
    started this process (RANK set by hand or another launcher): its parent may be the shell that
    runs every launch, so no key is unique to one and every rank prints its line.
    """
    import os

    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE", "")
    if error_file and error_file != os.devnull:
        return "file:" + os.path.dirname(os.path.dirname(os.path.abspath(error_file)))
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return None
    parent = os.getppid()
    try:  # field 22 of /proc/PID/stat, after the parenthesised command name: the start time in ticks
        with open(f"/proc/{parent}/stat") as fh:
            started = fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None  # not Linux: no way to tell this launcher from an earlier one with its pid
    launch = "-".join(os.environ.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
                                                        "MASTER_PORT"))
    return f"pid:{parent}-{started}-{launch}"


def _first_to_claim(line: str) -> bool:
    """True for the first local rank of this torchrun launch to report ``line`` (see _report)."""
    import hashlib
    import os
    import tempfile

    launch = _launch_key()
    if launch is None:
        return True
    key = hashlib.sha256(launch.encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), f"cnnlab-torchrun-{key}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        marker = os.path.join(folder, hashlib.sha256(line.encode()).hexdigest()[:16])
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    except OSError:  # no usable temporary folder: print, as every rank did before
        return True
    return True


def _torchrun_rank() -> str:
    """This process's ``RANK`` under torchrun ('' in a plain run)."""
    import os

    return os.environ.get("RANK", "").strip()


def _one_line(exc: BaseException, limit: int = MAX_LINE) -> str:
    """The message of ``exc`` on one line (see :func:`cnnlab.errors.one_line`).

    An OSError reads "Permission denied: PATH" rather than "[Errno 13] Permission denied: 'PATH'".
    """
    if isinstance(exc, OSError) and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        text = f"{exc.strerror}: {' -> '.join(names)}" if names else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return one_line(text, limit)


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (e.g. captured by a test)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
