"""The client-side rules for every parameter, checked before a request is sent.

Each check raises `InvalidParameterError` naming the parameter and the rule.
Booleans are never accepted as numbers, although Python counts them as ints.
Every module checks its numbers here: counts with `check_int_range`, seconds
and rates with `check_seconds` / `check_number` (finite: no NaN, no infinity,
no int too large for a float).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any, TypeVar

from ._constants import MAX_JSON_INT, MAX_LIMIT
from ._exceptions import InvalidParameterError

T = TypeVar("T")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: object) -> float | None:
    """`value` as a float if it is a finite real number (not a bool), else None."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)  # an int past a float's range overflows
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _shown(value: object) -> str:
    """`value` as a message shows it: its repr, cut at 40 characters."""
    if isinstance(value, int) and value.bit_length() > 64:
        # str() refuses ints of more than 4300 digits; the message must not fail.
        return f"an integer of {value.bit_length()} bits"
    return repr(value)[:40]


def _check_encodable(parameter: str, text: str) -> None:
    # A lone surrogate (from a broken decode) has no UTF-8 form: JSON cannot carry it.
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidParameterError(
                parameter, f"must be valid Unicode text; it has a lone surrogate at {error.start}"
            ) from None


def check_query(query: object) -> str:
    """A query is a string with something in it besides white space."""
    if not isinstance(query, str):
        raise InvalidParameterError("query", f"must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidParameterError("query", "must not be empty or blank")
    _check_encodable("query", query)
    return query


def check_int_range(parameter: str, value: object, low: int, high: int | None = None) -> int:
    """An integer (not a bool) within ``low..high`` (``high`` None: no upper bound)."""
    if not _is_int(value):
        raise InvalidParameterError(
            parameter, f"must be an integer, got {type(value).__name__} {_shown(value)}"
        )
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidParameterError(parameter, f"must be {bound}, got {_shown(value)}")
    return value


def check_number(
    parameter: str,
    value: object,
    *,
    at_least: float | None = None,
    high: float | None = None,
    unit: str = "",
    or_else: str = "",
) -> float:
    """A finite number (not a bool, not NaN), as a float: > 0, or >= `at_least`; <= `high`.

    `unit` names what it counts (" of seconds"); `or_else` lists the other
    forms the parameter takes, for the message (" or None").
    """
    number = _finite(value)
    if (
        number is None
        or (number <= 0 if at_least is None else number < at_least)
        or (high is not None and value > high)  # type: ignore[operator]  # exact for an int
    ):
        if at_least is not None and high is not None:
            bound = f"between {at_least:g} and {high}"
        else:
            bound = f">= {at_least:g}" if at_least is not None else "> 0"
            bound += f" and <= {high}" if high is not None else ""
        raise InvalidParameterError(
            parameter, f"must be a finite number{unit} {bound}{or_else}, got {_shown(value)}"
        )
    return number


def check_seconds(
    parameter: str,
    value: object,
    *,
    zero: bool = False,
    high: float | None = None,
    or_else: str = "",
) -> float:
    """A finite number of seconds as a float: > 0 (>= 0 with `zero`), at most `high`."""
    at_least = 0.0 if zero else None
    return check_number(
        parameter, value, at_least=at_least, high=high, unit=" of seconds", or_else=or_else
    )


def check_optional(parameter: str, value: object, cls: type[T], what: str = "") -> T | None:
    """`value` if it is None or a `cls` (`what`, if given, names it: "an httpx.AsyncClient")."""
    if value is not None and not isinstance(value, cls):
        name = what or f"a {cls.__name__}"
        raise InvalidParameterError(
            parameter, f"must be {name} or None, got {type(value).__name__}"
        )
    return value


def check_limit(parameter: str, value: object) -> int:
    """A page size: an integer from 1 to the API's maximum."""
    return check_int_range(parameter, value, 1, MAX_LIMIT)


def check_offset(value: object) -> int:
    """An offset: an integer >= 0 (and one that JSON carries exactly)."""
    return check_int_range("offset", value, 0, MAX_JSON_INT)


def check_max_items(value: object) -> int | None:
    """`max_items`: None (no limit) or an integer >= 1."""
    if value is None:
        return None
    return check_int_range("max_items", value, 1)


def check_genres(genres: Collection[object]) -> None:
    """Genres: a non-empty list of non-empty strings (free text; no fixed list)."""
    if not genres:
        raise InvalidParameterError("filters.genres", "must name at least one genre")
    for index, genre in enumerate(genres):
        if not isinstance(genre, str) or not genre.strip():
            raise InvalidParameterError(
                f"filters.genres[{index}]", f"must be a non-empty string, got {genre!r}"
            )
        _check_encodable(f"filters.genres[{index}]", genre)


def check_duration_bound(parameter: str, value: object) -> None:
    """A duration bound: None or a finite number of seconds >= 0 (that JSON carries exactly)."""
    if value is not None:
        check_seconds(parameter, value, zero=True, high=MAX_JSON_INT)


def check_count(parameter: str, value: object) -> None:
    """A minimum count: None or an integer >= 0 (and one that JSON carries exactly)."""
    if value is not None:
        check_int_range(parameter, value, 0, MAX_JSON_INT)


def check_date(parameter: str, value: object) -> _dt.date:
    """A real calendar date, as a `datetime.date` or a ``YYYY-MM-DD`` string."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        # fromisoformat alone accepts 20240101 and 2024-W01-1 on 3.11+.
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                return _dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise InvalidParameterError(parameter, f"must be a real date as YYYY-MM-DD, got {value!r}")
    raise InvalidParameterError(
        parameter, f"must be a datetime.date or a YYYY-MM-DD string, got {value!r}"
    )


def reject_unknown_keys(parameter: str, mapping: Mapping[str, Any], known: Collection[str]) -> None:
    """A mapping names only keys the API documents, so a typo is not ignored."""
    unknown = [key for key in mapping if key not in known]
    if unknown:
        raise InvalidParameterError(
            parameter,
            f"unknown key {unknown[0]!r}; expected one of {', '.join(sorted(known))}",
        )


@cache
def _header_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The header name and bad value patterns, compiled on the first extra header."""
    # RFC 9110: a header name is a token; a value has no control characters but
    # tab, and no white space at either end (httpcore's h11 refuses those).
    return (
        re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"),
        re.compile(r"[\x00-\x08\x0a-\x1f\x7f]"),
    )


#: Headers that frame the request body: the client sets them, or a request breaks.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


def check_headers(parameter: str, headers: object) -> dict[str, str]:
    """Extra headers: string names and values that go on the wire as they are.

    A value is never echoed in the error: it may be a secret of its own.
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidParameterError(
            parameter, f"must be a mapping of header names to values, got {type(headers).__name__}"
        )
    checked: dict[str, str] = {}
    if not headers:
        return checked
    header_name, value_control = _header_patterns()
    for name, value in headers.items():
        if not isinstance(name, str) or not header_name.fullmatch(name):
            raise InvalidParameterError(parameter, f"{name!r} is not a valid header name")
        if name.lower() in _FRAMING_HEADERS:
            raise InvalidParameterError(
                parameter, f"must not set {name}: the client frames its own requests"
            )
        where = f"{parameter}[{name!r}]"
        if not isinstance(value, str):
            raise InvalidParameterError(where, f"must be a string, got {type(value).__name__}")
        if value_control.search(value) or value != value.strip(" \t"):
            raise InvalidParameterError(
                where,
                "must have no control characters (CR, LF, NUL) and no white space at the ends",
            )
        if not value.isascii():
            raise InvalidParameterError(
                where, "must be ASCII text (HTTP carries other characters differently per client)"
            )
        checked[name] = value
    return checked


#: The longest a cache entry may live in all (`ttl` plus its stale window): ten
#: years. Past it a time to live is a mistake, and Redis refuses (or Python
#: cannot even compute) the milliseconds of one.
MAX_STORE_SECONDS = 10 * 365 * 24 * 3600


def check_store_lifetime(
    ttl: float, stale: float = 0.0, *, owner: str = "cache", window: str = "stale_if_error"
) -> None:
    """An entry's whole life, ``ttl`` plus a stale `window` (each already >= 0), is ten
    years at most.

    Checked where the two are given, so that a page the API answered is never
    lost to a store that cannot hold it.
    """
    if ttl + stale > MAX_STORE_SECONDS:
        name = "ttl" if ttl > MAX_STORE_SECONDS or not stale else window
        raise InvalidParameterError(
            f"{owner}.{name}",
            f"ttl + {window} must be at most {MAX_STORE_SECONDS} s (ten years), "
            f"got {ttl + stale:g} s",
        )
