"""Benchmarks behind ``cnnlab bench`` (library code; the sub-commands live in
``cnnlab/commands/bench.py``): ``train`` (seconds to a target accuracy against a
baseline preset) and ``conv`` (convolution algorithms against kernel size).

Every benchmark returns its result as a dict, writes it as JSON under
``benchmarks/results/`` and compares against a baseline measured in the same run.
Progress goes to a ``progress``/``say`` callable (stderr by default).
"""

from __future__ import annotations

import sys
from typing import Callable

Progress = Callable[[str], None]


def to_stderr(message: str) -> None:
    """The default progress sink: one line on stderr, so stdout stays for results."""
    print(message, file=sys.stderr, flush=True)
