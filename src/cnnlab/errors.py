"""One exception type for every mistake a user can make.

The CLI prints the message of a :class:`CnnlabError` as one line and exits
non-zero; library callers can catch it like any ``ValueError``.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class CnnlabError(ValueError):
    """A user-facing error: the message names the bad value and the fix."""


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """Return the choice closest to ``word`` (for "did you mean ...?").

    >>> nearest("epohcs", ["epochs", "seed"])
    'epochs'
    """
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A sentence fragment suggesting the nearest valid choice, or listing them."""
    choices = sorted(set(choices))
    best = nearest(word, choices)
    if best is not None:
        return f"did you mean '{best}'?"
    shown = ", ".join(choices[:20]) + (" ..." if len(choices) > 20 else "")
    return f"valid choices: {shown}"
