"""`_argtypes`: each command-line value type takes what its rule says, and says the rule.

The `audioscape` command and the emulator's `serve` share these argparse types; a
refusal is an `argparse.ArgumentTypeError` stating the rule and the value given, which
argparse prints as ``audioscape: error: --limit: ...`` (`test_cli.py` runs that end).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from audioscape_async._argtypes import (
    iso_date,
    non_negative_int,
    positive_int,
    positive_number,
    seconds,
    whole_range,
)


def _refused(parse: Callable[[str], object], text: str) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse(text)
    return str(caught.value)


def test_a_range_takes_both_ends_and_refuses_past_them() -> None:
    """1..100: 1 and 100 are in; 0 and 101 are out, the message giving the range and value."""
    limit = whole_range(1, 100)
    assert (limit("1"), limit("100")) == (1, 100)
    assert _refused(limit, "0") == "must be a whole number from 1 to 100, got 0"
    assert _refused(limit, "101") == "must be a whole number from 1 to 100, got 101"


def test_an_open_range_says_at_least() -> None:
    """Without an upper bound the rule reads ">= low"; huge numbers are fine."""
    assert non_negative_int("0") == 0
    assert positive_int(str(10**30)) == 10**30
    assert _refused(non_negative_int, "-1") == "must be a whole number >= 0, got -1"
    assert _refused(positive_int, "0") == "must be a whole number >= 1, got 0"


@pytest.mark.parametrize("text", ["ten", "1.5", "2.0", "1e3", "", "0x10"])
def test_a_whole_number_is_written_as_one(text: str) -> None:
    """Words, fractions, floats that happen to be whole, exponents: refused, quoted."""
    assert _refused(whole_range(1, 100), text) == (
        f"must be a whole number from 1 to 100, got {text!r}"
    )


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0.0), ("0.25", 0.25), ("30", 30.0), ("1e3", 1000.0)]
)
def test_seconds_are_any_finite_number_from_zero(text: str, value: float) -> None:
    """Zero (no wait), fractions and exponents are seconds."""
    assert seconds(text) == value


@pytest.mark.parametrize("text", ["-0.1", "inf", "nan", "1e400"])
def test_seconds_below_zero_or_not_finite_are_refused(text: str) -> None:
    """A negative time, an endless one or no number at all: refused, with the number read."""
    assert _refused(seconds, text).startswith("must be a number of seconds >= 0, got ")


def test_seconds_that_are_not_a_number_are_quoted() -> None:
    """Text that is no number at all is shown quoted, as the user typed it."""
    assert _refused(seconds, "soon") == "must be a number of seconds >= 0, got 'soon'"


@pytest.mark.parametrize("text", ["0", "-5", "inf", "nan"])
def test_a_rate_is_above_zero_and_finite(text: str) -> None:
    """Zero requests per second would never send; refused like a negative or endless rate."""
    assert _refused(positive_number, text).startswith("must be a number > 0, got ")


def test_a_rate_may_be_a_fraction() -> None:
    """One request every ten seconds is a rate; text is quoted when refused."""
    assert positive_number("0.1") == 0.1
    assert _refused(positive_number, "fast") == "must be a number > 0, got 'fast'"


@pytest.mark.parametrize("text", ["2024-02-29", "1999-12-31", "2025-01-01"])
def test_a_real_date_written_yyyy_mm_dd_is_kept_as_written(text: str) -> None:
    """A leap day included; the text goes on as written, not reformatted."""
    assert iso_date(text) == text


@pytest.mark.parametrize(
    "text",
    ["2023-02-29", "2024-13-01", "2024-1-01", "20240101", "2024-001", "2024-01-01T00", "soon"],
)
def test_any_other_date_is_refused_quoting_it(text: str) -> None:
    """Not a real day, or an ISO form other than YYYY-MM-DD: refused, the text quoted."""
    assert _refused(iso_date, text) == f"must be a real date written YYYY-MM-DD, got {text!r}"
