"""The client-side rules for every parameter, checked before a request is sent.

Each check raises `InvalidParameterError` naming the parameter and the rule.
Booleans are never accepted as numbers, although Python counts them as ints.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Collection, Mapping
from typing import Any

from ._constants import MAX_LIMIT
from ._exceptions import InvalidParameterError


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(
        value
    )


def check_query(query: object) -> str:
    """A query is a string with something in it besides white space."""
    if not isinstance(query, str):
        raise InvalidParameterError("query", f"must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidParameterError("query", "must not be empty or blank")
    return query


def check_int_range(parameter: str, value: object, low: int, high: int | None = None) -> int:
    """An integer (not a bool) within ``low..high`` (``high`` None: no upper bound)."""
    if not _is_int(value):
        raise InvalidParameterError(
            parameter, f"must be an integer, got {type(value).__name__} {value!r}"
        )
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidParameterError(parameter, f"must be {bound}, got {value}")
    return value


def check_limit(parameter: str, value: object) -> int:
    """A page size: an integer from 1 to the API's maximum."""
    return check_int_range(parameter, value, 1, MAX_LIMIT)


def check_offset(value: object) -> int:
    """An offset: an integer >= 0."""
    return check_int_range("offset", value, 0)


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


def check_duration_bound(parameter: str, value: object) -> None:
    """A duration bound: None or a finite number of seconds >= 0."""
    if value is None:
        return
    if not _is_number(value):
        raise InvalidParameterError(parameter, f"must be a number of seconds, got {value!r}")
    assert isinstance(value, (int, float))
    if value < 0:
        raise InvalidParameterError(parameter, f"must be >= 0, got {value}")


def check_count(parameter: str, value: object) -> None:
    """A minimum count: None or an integer >= 0."""
    if value is not None:
        check_int_range(parameter, value, 0)


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
