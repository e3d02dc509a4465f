"""Argument checks every model constructor makes, each failing in one line that names the option.

Constructors call these at their top, before any layer is built, so a bad
option never surfaces as a torch error from deep inside a layer:

>>> positive_int("kernel_size", 3)
3
>>> positive_int("kernel_size", 0)
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: kernel_size must be a positive integer, got 0
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from cnnlab.errors import CnnlabError, short_repr

MAX_ECHO = 60  # characters of a received value an error message repeats
MAX_WIDTH = 1_000_000  # channels, units, classes: far above any real network, far below an overflow
MAX_IMAGE_SIZE = 8192  # pixels per side a model may be built for


def short(value: Any, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` cut to ``limit`` characters, so an error line stays short whatever was typed.

    >>> short("x" * 100, 10)
    "'xxxxxx..."
    """
    return short_repr(value, limit)  # never builds the whole repr of a huge (alias-bomb) value


def _is_int(value: Any) -> bool:
    # bool is an int subclass; True as a channel count is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(name: str, value: Any, maximum: int = MAX_WIDTH, low: int = 1) -> int:
    """``value`` as an int in [low, maximum], else a one-line error naming ``name``."""
    if not _is_int(value):
        raise CnnlabError(f"{name} must be {_int_words(low)}, got {short(value)}")
    if value < low:
        raise CnnlabError(f"{name} must be {_int_words(low)}, got {value}")
    if value > maximum:
        raise CnnlabError(f"{name}={short(value)} is too large; the most this model allows is {maximum:,}")
    return value


def _int_words(low: int) -> str:
    return {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")


def int_or_list(name: str, value: Any, count: int, low: int = 1, maximum: int = MAX_WIDTH) -> list[int]:
    """One int per block: a single int repeated ``count`` times, or a list of exactly ``count`` ints."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise CnnlabError(f"{name} lists {len(value)} values but blocks={count}; give one per block")
        return [positive_int(f"{name}[{i}]", v, maximum, low) for i, v in enumerate(value)]
    return [positive_int(name, value, maximum, low)] * count


def fraction(name: str, value: Any) -> float:
    """A probability in [0, 1) such as a dropout rate."""
    if not _is_real(value) or not 0.0 <= value < 1.0:
        raise CnnlabError(f"{name} must be a number in [0, 1), got {short(value)}")
    return float(value)


def positive_float(name: str, value: Any, minimum: float = 0.0, maximum: float = math.inf) -> float:
    """A finite number above ``minimum`` (exclusive when 0) and at most ``maximum``."""
    ok = _is_real(value) and math.isfinite(value) and value <= maximum
    ok = ok and (value > 0 if minimum == 0 else value >= minimum)
    if not ok:
        low = "> 0" if minimum == 0 else f">= {minimum}"
        high = "" if maximum == math.inf else f" and <= {maximum}"
        raise CnnlabError(f"{name} must be a finite number {low}{high}, got {short(value)}")
    return float(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices`` (strings), else an error listing them."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(choices)
        raise CnnlabError(f"{name} must be one of {listed}; got {short(value)}")
    return value


def choices_per_block(name: str, value: Any, count: int, choices: Sequence[str]) -> list[str]:
    """One choice per block: a single name repeated, or a list of exactly ``count`` names."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise CnnlabError(f"{name} lists {len(value)} values but blocks={count}; give one per block")
        return [choice(f"{name}[{i}]", v, choices) for i, v in enumerate(value)]
    return [choice(name, value, choices)] * count


def flag(name: str, value: Any) -> bool:
    """A true/false option; strings like 'yes' are refused rather than read as truthy."""
    if not isinstance(value, bool):
        raise CnnlabError(f"{name} must be true or false, got {short(value)}")
    return value


def image_size(value: Any, default: int) -> int:
    """The side of the square input a model is built for: ``default`` when None."""
    if value is None:
        return default
    return positive_int("image_size", value, MAX_IMAGE_SIZE)
