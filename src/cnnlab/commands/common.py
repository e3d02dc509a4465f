"""Helpers shared by CLI commands: JSON output and ``key=value`` parsing."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(obj: Any) -> None:
    """Print exactly one JSON object on stdout (the ``--json`` contract)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def notice(message: str) -> None:
    """Progress and notices go to stderr so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)
