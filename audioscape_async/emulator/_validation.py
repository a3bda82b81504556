"""Request validation: the documented contract, checked field by field.

Every refusal is a `RequestError` whose message names the offending field,
which the app returns as `400 {"error": message}`. Unknown fields (top level
and inside `filters`) are ignored, as the API does; `null` means "not given".
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from audioscape_async import _constants as c

from . import _defaults as d
from ._ranking import NO_FILTERS, SearchFilters

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RequestError(Exception):
    """A request the API refuses with 400; the message is the `error` field."""


@attrs.frozen
class SearchRequest:
    """A validated search request."""

    query: str
    limit: int
    offset: int
    filters: SearchFilters


def check_content_type(value: str | None) -> None:
    """Refuse a body that is not declared as JSON (parameters like charset are fine)."""
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type != c.JSON_CONTENT_TYPE:
        shown = f"got {value!r}" if value else "none was given"
        raise RequestError(f"Content-Type must be {c.JSON_CONTENT_TYPE} ({shown})")


def parse_body(body: bytes) -> Mapping[str, Any]:
    """The request body as a JSON object."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError("Request body must be valid JSON") from None
    if not isinstance(data, dict):
        raise RequestError("Request body must be a JSON object")
    return data


def parse_search(data: Mapping[str, Any]) -> SearchRequest:
    """Validate a search body: query, limit, offset and filters."""
    query = data.get("query")
    if query is None or (isinstance(query, str) and not query.strip()):
        raise RequestError(d.ERROR_MISSING_QUERY)
    if not isinstance(query, str):
        raise RequestError("Invalid field: query must be a string")
    limit = _integer(data, "limit", c.DEFAULT_LIMIT, low=1, high=c.MAX_LIMIT)
    offset = _integer(data, "offset", c.DEFAULT_OFFSET, low=0, high=None)
    return SearchRequest(query=query, limit=limit, offset=offset, filters=_filters(data))


def partial_paging(data: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Best-effort offset and limit of a body, for the request log even when it is refused."""
    values: list[int | None] = []
    for name in ("offset", "limit"):
        value = data.get(name)
        values.append(value if isinstance(value, int) and not isinstance(value, bool) else None)
    return values[0], values[1]


def _integer(
    data: Mapping[str, Any], name: str, default: int, *, low: int, high: int | None
) -> int:
    value = data.get(name)
    if value is None:
        return default
    bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
    # JSON true is not a number, and 20.0 is not an integer.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"Invalid field: {name} must be an integer {bounds}")
    if value < low or (high is not None and value > high):
        raise RequestError(f"Invalid field: {name} must be an integer {bounds}, got {value}")
    return value


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"Invalid field: {name} must be a number")
    if value < 0:
        raise RequestError(f"Invalid field: {name} must not be negative")
    return value


def _filters(data: Mapping[str, Any]) -> SearchFilters:
    raw = data.get("filters")
    if raw is None:
        return NO_FILTERS
    if not isinstance(raw, dict):
        raise RequestError("Invalid field: filters must be an object")

    genres: frozenset[str] | None = None
    raw_genres = raw.get("genres")
    if raw_genres is not None:
        if not isinstance(raw_genres, list) or not all(
            isinstance(g, str) and g.strip() for g in raw_genres
        ):
            raise RequestError("Invalid field: filters.genres must be an array of strings")
        # An empty list narrows nothing, like leaving the filter out.
        genres = frozenset(g.strip().casefold() for g in raw_genres) or None

    duration_min = duration_max = None
    duration = raw.get("duration")
    if duration is not None:
        if not isinstance(duration, dict):
            raise RequestError(
                "Invalid field: filters.duration must be an object with min and/or max seconds"
            )
        if duration.get("min") is not None:
            duration_min = _number(duration["min"], "filters.duration.min")
        if duration.get("max") is not None:
            duration_max = _number(duration["max"], "filters.duration.max")
        if duration_min is not None and duration_max is not None and duration_min > duration_max:
            raise RequestError(
                "Invalid field: filters.duration.min must not be greater than filters.duration.max"
            )

    min_play_count = min_likes = None
    if raw.get("min_play_count") is not None:
        min_play_count = _number(raw["min_play_count"], "filters.min_play_count")
    if raw.get("min_likes") is not None:
        min_likes = _number(raw["min_likes"], "filters.min_likes")

    created_after = None
    raw_date = raw.get("created_after")
    if raw_date is not None:
        if not isinstance(raw_date, str) or not _DATE.fullmatch(raw_date):
            raise RequestError("Invalid field: filters.created_after must be a date as YYYY-MM-DD")
        try:
            created_after = _dt.date.fromisoformat(raw_date)
        except ValueError:
            raise RequestError(
                f"Invalid field: filters.created_after is not a real date: {raw_date}"
            ) from None

    return SearchFilters(
        genres=genres,
        duration_min=duration_min,
        duration_max=duration_max,
        min_play_count=min_play_count,
        min_likes=min_likes,
        created_after=created_after,
    )
