"""One exception type for every mistake a user can make.

The CLI prints the message of a :class:`CnnlabError` as one line and exits
non-zero; library callers can catch it like any ``ValueError``.
"""

from __future__ import annotations

import difflib
import reprlib
from typing import Iterable


MAX_LINE = 480  # characters of an error message (the CLI's whole "cnnlab: error: ..." line stays under 500)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` with every run of whitespace (newlines included) made one space, cut to ``limit``.

    A longer text loses its middle: the start says what went wrong and the end what to do.

    >>> one_line("bad value\\n  on two lines")
    'bad value on two lines'
    >>> len(one_line("x" * 1000, limit=50))
    50
    """
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    head = (limit - 5) * 2 // 5
    return f"{text[:head]} ... {text[len(text) - (limit - 5 - head):]}"


class CnnlabError(ValueError):
    """A user-facing error: the message names the bad value and the fix.

    The message is always one line of at most :data:`MAX_LINE` characters, whatever it echoes.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(message))


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


# An error message echoes what the user gave; a value built by a YAML alias bomb or a pasted file
# can be megabytes long, so every echoed value is cut to this many characters.
ECHO_LIMIT = 100


class _ShortRepr(reprlib.Repr):
    """reprlib with small limits, and huge integers described instead of converted (Python refuses
    to turn an integer of more than 4300 digits into text)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 3, 8, 8, 8, 8
        self.maxstring, self.maxother, self.maxlong = ECHO_LIMIT, ECHO_LIMIT, 40

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            return f"<integer of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return repr(x)


def short_repr(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters with ``...``, safe for any size of value.

    Nested containers are shown to a few levels and items (a YAML alias bomb is megabytes as text).

    >>> short_repr("x" * 500, limit=12)
    "'xxxxxxxx..."
    >>> short_repr([[1] * 20] * 3)
    '[[1, 1, 1, 1, 1, 1, 1, 1, ...], [1, 1, 1, 1, 1, 1, 1, 1, ...], [1, 1, 1, 1, 1, 1, 1, 1, ...]]'
    """
    try:
        text = _ShortRepr().repr(value)
    except Exception:  # a value whose __repr__ fails still gets named
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_int_range(option: str, value: int, low: int, high: int, hint: str = "") -> int:
    """Return ``value`` if ``low <= value <= high``, else raise one line naming the option.

    >>> check_int_range("--top", 5, 1, 256)
    5
    """
    if not low <= value <= high:
        raise CnnlabError(f"{option} {short_repr(value)} is out of range; expected an integer in "
                          f"[{low}, {high:,}]" + (f"; {hint}" if hint else ""))
    return value
