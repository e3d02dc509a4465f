"""Helpers shared by CLI commands: JSON output and ``key=value`` parsing."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from cnnlab.errors import one_line


def print_json(obj: Any) -> None:
    """Print exactly one JSON object on stdout (the ``--json`` contract)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def notice(message: str) -> None:
    """Progress and notices go to stderr so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors keep the one-line contract: the usage, then one capped error line.

    argparse echoes the offending tokens raw, so a pasted newline or a 600-character word
    would otherwise make a multi-line or overlong error.
    """

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")
