"""`_validation`: each parameter rule, its boundaries, and the error that names the problem.

The clients call these checks before any request; the tests here call them directly, so
a rule that moves or loosens fails here with the rule's own name, not somewhere deep in a
client test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from audioscape_async import InvalidParameterError
from audioscape_async._constants import MAX_JSON_INT, MAX_LIMIT
from audioscape_async._validation import (
    check_count,
    check_date,
    check_duration_bound,
    check_genres,
    check_headers,
    check_int_range,
    check_limit,
    check_max_items,
    check_offset,
    check_query,
    reject_unknown_keys,
)


def _refused(parameter: str, match: str) -> Any:
    """Expect an `InvalidParameterError` for `parameter` whose message matches `match`."""
    return pytest.raises(InvalidParameterError, match=rf"^invalid {parameter}: .*{match}")


# -- query ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["jazz", " x ", "日本の音楽", "a" * 10_000])
def test_a_query_with_text_is_returned_as_given(query: str) -> None:
    """Any string with something besides white space is a query, unchanged (no strip)."""
    assert check_query(query) is query


@pytest.mark.parametrize("query", ["", " ", "\t\n "])
def test_an_empty_or_blank_query_is_refused(query: str) -> None:
    """A blank query would be the API's 400: refused before it is sent."""
    with _refused("query", "must not be empty or blank"):
        check_query(query)


@pytest.mark.parametrize(("query", "kind"), [(None, "NoneType"), (b"jazz", "bytes"), (3, "int")])
def test_a_query_that_is_not_a_string_names_its_type(query: object, kind: str) -> None:
    """The message says what was passed instead of a string."""
    with _refused("query", f"must be a string, got {kind}"):
        check_query(query)


def test_a_lone_surrogate_is_refused_with_its_position() -> None:
    """Text JSON cannot carry (a lone surrogate) is refused, saying where it is."""
    with _refused("query", "lone surrogate at 4"):
        check_query("jazz\ud800")


# -- integers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 50, MAX_LIMIT])
def test_limit_accepts_one_to_the_maximum(value: int) -> None:
    """Both ends of 1..MAX_LIMIT are page sizes."""
    assert check_limit("limit", value) == value


@pytest.mark.parametrize("value", [0, -1, MAX_LIMIT + 1])
def test_limit_outside_the_range_names_the_range_and_the_value(value: int) -> None:
    """Just past either end is refused, and the message gives the range and the value."""
    with _refused("limit", rf"must be between 1 and {MAX_LIMIT}, got {value}$"):
        check_limit("limit", value)


@pytest.mark.parametrize(
    ("value", "shown"), [(True, "bool True"), (2.0, "float 2.0"), ("3", "str '3'")]
)
def test_an_integer_is_never_a_bool_float_or_string(value: object, shown: str) -> None:
    """`True` counts as 1 in Python and 2.0 equals 2, yet neither is an integer here."""
    with _refused("page_size", f"must be an integer, got {shown}"):
        check_int_range("page_size", value, 1, 10)


def test_an_open_range_says_at_least() -> None:
    """Without an upper bound the message says ">= low", not a range."""
    assert check_int_range("n", 10**30, 1) == 10**30
    with _refused("n", "must be >= 1, got 0$"):
        check_int_range("n", 0, 1)


def test_a_huge_integer_is_described_not_printed() -> None:
    """An integer too long for str() still gets a message: its size in bits."""
    huge = 10**5000
    with _refused("offset", f"got an integer of {huge.bit_length()} bits"):
        check_offset(huge)


def test_offset_stops_at_the_largest_exact_json_integer() -> None:
    """0 and 2**53 - 1 are offsets; one more is refused (JSON would round it)."""
    assert check_offset(0) == 0
    assert check_offset(MAX_JSON_INT) == MAX_JSON_INT
    with _refused("offset", f"between 0 and {MAX_JSON_INT}"):
        check_offset(MAX_JSON_INT + 1)
    with _refused("offset", "got -1"):
        check_offset(-1)


def test_max_items_is_none_or_at_least_one() -> None:
    """None means no limit; 1 is the least; 0 is refused."""
    assert check_max_items(None) is None
    assert check_max_items(1) == 1
    with _refused("max_items", ">= 1, got 0"):
        check_max_items(0)


def test_a_count_is_none_or_a_non_negative_exact_integer() -> None:
    """min_likes and min_play_count: None, 0 and 2**53 - 1 pass; -1 and 2**53 fail."""
    for good in (None, 0, MAX_JSON_INT):
        check_count("filters.min_likes", good)
    for bad in (-1, MAX_JSON_INT + 1):
        with _refused("filters.min_likes", "must be between 0"):
            check_count("filters.min_likes", bad)


# -- filters -------------------------------------------------------------------------------


def test_genres_must_name_one_at_least() -> None:
    """An empty genre list would narrow nothing; it is refused as a mistake."""
    with _refused("filters.genres", "must name at least one genre"):
        check_genres([])


@pytest.mark.parametrize("bad", ["", "  ", None, 7])
def test_a_bad_genre_is_named_by_its_index(bad: object) -> None:
    """The message points at the offending element, `filters.genres[1]`."""
    with _refused(r"filters\.genres\[1\]", "must be a non-empty string"):
        check_genres(["rock", bad])


@pytest.mark.parametrize("value", [None, 0, 0.5, 600, MAX_JSON_INT])
def test_a_duration_bound_is_none_or_non_negative_seconds(value: float | None) -> None:
    """None, zero, fractions and the largest exact integer are bounds."""
    check_duration_bound("filters.duration.min", value)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (-0.1, "between 0 and"),
        (MAX_JSON_INT + 1, "between 0 and"),
        (float("nan"), f"must be a finite number of seconds between 0 and {MAX_JSON_INT}, got nan"),
        (float("inf"), f"must be a finite number of seconds between 0 and {MAX_JSON_INT}, got inf"),
        (True, f"must be a finite number of seconds between 0 and {MAX_JSON_INT}, got True"),
        ("60", f"must be a finite number of seconds between 0 and {MAX_JSON_INT}, got '60'"),
    ],
)
def test_a_bad_duration_bound_says_why(value: object, match: str) -> None:
    """Negative, too large, not finite, bool or text: each refused with its reason."""
    with _refused(r"filters\.duration\.max", match):
        check_duration_bound("filters.duration.max", value)


def test_a_date_comes_as_a_date_a_datetime_or_an_iso_string() -> None:
    """All three forms give a `datetime.date`; a datetime loses its time of day."""
    day = dt.date(2024, 2, 29)
    assert check_date("created_after", day) is day
    assert check_date("created_after", dt.datetime(2024, 2, 29, 23, 59)) == day
    assert check_date("created_after", "2024-02-29") == day


@pytest.mark.parametrize("text", ["2023-02-29", "20240101", "2024-W01-1", "2024-1-01", "soon"])
def test_a_date_string_must_be_a_real_yyyy_mm_dd(text: str) -> None:
    """Not a real day, or another ISO form Python would accept: refused, quoting the text."""
    with _refused("created_after", f"must be a real date as YYYY-MM-DD, got '{text}'"):
        check_date("created_after", text)


def test_a_date_of_another_type_says_which_forms_are_accepted() -> None:
    """A number is neither form; the message lists both."""
    with _refused("created_after", "must be a datetime.date or a YYYY-MM-DD string, got 2024"):
        check_date("created_after", 2024)


def test_unknown_keys_are_refused_with_the_known_ones_listed() -> None:
    """A typo in a mapping is an error naming the key and every key that would do."""
    reject_unknown_keys("filters", {"genres": ["rock"]}, {"genres", "min_likes"})
    with _refused("filters", "unknown key 'genre'; expected one of genres, min_likes$"):
        reject_unknown_keys("filters", {"genre": "rock"}, {"min_likes", "genres"})


# -- headers -------------------------------------------------------------------------------


def test_headers_none_or_empty_are_no_headers() -> None:
    """None and {} both give an empty dict; good headers come back as given."""
    assert check_headers("extra_headers", None) == {}
    assert check_headers("extra_headers", {}) == {}
    good = {"X-Trace": "abc 123", "x-tab": "a\tb"}
    assert check_headers("extra_headers", good) == good


def test_headers_must_be_a_mapping() -> None:
    """A list of pairs is not accepted; the message names the type given."""
    with _refused("extra_headers", "must be a mapping of header names to values, got list"):
        check_headers("extra_headers", [("x-a", "b")])


@pytest.mark.parametrize("name", ["", "x a", "x:y", "é", "x\n"])
def test_a_header_name_must_be_a_token(name: str) -> None:
    """Only RFC 9110 token characters make a header name."""
    with _refused("extra_headers", "is not a valid header name"):
        check_headers("extra_headers", {name: "v"})


@pytest.mark.parametrize("name", ["Content-Length", "transfer-encoding"])
def test_framing_headers_belong_to_the_client(name: str) -> None:
    """Setting the body's framing would break the request: refused, in any case."""
    with _refused("extra_headers", f"must not set {name}"):
        check_headers("extra_headers", {name: "1"})


@pytest.mark.parametrize("value", ["a\r\nInjected: 1", "nul\x00", " padded", "padded\t", "del\x7f"])
def test_a_header_value_with_control_characters_or_padding_is_refused(value: str) -> None:
    """CR, LF, NUL, DEL or white space at an end: refused, and the value is not echoed."""
    with pytest.raises(InvalidParameterError, match=r"must have no control characters") as caught:
        check_headers("extra_headers", {"x-trace": value})
    assert caught.value.parameter == "extra_headers['x-trace']"
    assert value not in str(caught.value)


def test_a_header_value_must_be_ascii_text() -> None:
    """Non-ASCII goes on the wire differently per client: refused; a non-string names its type."""
    with _refused(r"extra_headers\['x-name'\]", "must be ASCII text"):
        check_headers("extra_headers", {"x-name": "Zoë"})
    with _refused(r"extra_headers\['x-n'\]", "must be a string, got int"):
        check_headers("extra_headers", {"x-n": 1})
