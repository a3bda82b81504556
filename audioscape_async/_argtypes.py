"""argparse value types shared by the `audioscape` command and the emulator's `serve`.

Each raises `argparse.ArgumentTypeError` with a message stating the rule and
the value given ("must be a whole number from 1 to 100, got -5"), which the
command prints as one line (``audioscape: error: --limit: ...``), exit 2.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
from collections.abc import Callable


def _whole(text: str, rule: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{rule}, got {text!r}") from None


def whole_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from `low` to `high` (no upper bound when `high` is None)."""
    rule = (
        f"must be a whole number from {low} to {high}"
        if high is not None
        else f"must be a whole number >= {low}"
    )

    def parse(text: str) -> int:
        value = _whole(text, rule)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{rule}, got {text}")
        return value

    parse.__name__ = f"whole number from {low}"
    return parse


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    return whole_range(0)(text)


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return whole_range(1)(text)


def _finite(text: str, rule: str, *, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{rule}, got {text!r}") from None
    if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
        raise argparse.ArgumentTypeError(f"{rule}, got {text}")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds >= 0."""
    return _finite(text, "must be a number of seconds >= 0", zero=True)


def positive_number(text: str) -> float:
    """A finite number > 0 (a rate)."""
    return _finite(text, "must be a number > 0", zero=False)


def iso_date(text: str) -> str:
    """A calendar date written YYYY-MM-DD."""
    try:
        _dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a real date written YYYY-MM-DD, got {text!r}"
        ) from None
    if len(text) != 10:
        raise argparse.ArgumentTypeError(f"must be a real date written YYYY-MM-DD, got {text!r}")
    return text
