"""Request validation: the documented contract, checked field by field.

Every refusal is a `RequestError` whose message names the offending field,
which the app returns as `400 {"error": message}`. Unknown fields (top level
and inside `filters`) are ignored, as the API does.

Two choices the API's documentation leaves open, made the same way for
every field (docs/testing.md lists them with the other assumptions):

- A JSON number is an integer when its value is one: `27.0` is 27, as most
  JSON servers read it, and `27.5` is a 400 naming the field.
- `null` is a value of the wrong type, not "not given": `"limit": null` or
  `"filters": {"created_after": null}` is a 400 naming the field, like any
  other wrong type. To leave a field out, leave it out.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs
import msgspec

from audioscape_async import _constants as c

from . import _defaults as d
from ._ranking import NO_FILTERS, RankFilters

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Decoded here rather than by the SDK's `_json.loads`, so that what the request log keeps
#: of a body was allocated by the emulator's own code: tests/reliability tells the SDK's
#: memory from the emulator's by the file that allocated it.
_decode_body = msgspec.json.Decoder().decode


class RequestError(Exception):
    """A request the API refuses with 400; the message is the `error` field."""


@attrs.frozen
class SearchRequest:
    """A validated search request."""

    query: str
    limit: int
    offset: int
    filters: RankFilters


def check_content_type(value: str | None) -> None:
    """Refuse a body that is not declared as JSON (parameters like charset are fine)."""
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type != c.JSON_CONTENT_TYPE:
        shown = f"got {value!r}" if value else "none was given"
        raise RequestError(f"Content-Type must be {c.JSON_CONTENT_TYPE} ({shown})")


def parse_body(body: bytes) -> Mapping[str, Any]:
    """The request body as a JSON object."""
    try:
        data = _decode_body(body)
    except (ValueError, RecursionError):  # msgspec.DecodeError, or nested past its limit
        raise RequestError("Request body must be valid JSON") from None
    if not isinstance(data, dict):
        raise RequestError("Request body must be a JSON object")
    return data


def parse_search(data: Mapping[str, Any]) -> SearchRequest:
    """Validate a search body: query, limit, offset and filters."""
    if "query" not in data:
        raise RequestError(d.ERROR_MISSING_QUERY)
    query = data["query"]
    if not isinstance(query, str):
        raise RequestError(f"Invalid field: query must be a string, got {_kind(query)}")
    if not query.strip():
        raise RequestError(d.ERROR_MISSING_QUERY)
    limit = _integer(data, "limit", c.DEFAULT_LIMIT, low=1, high=c.MAX_LIMIT)
    offset = _integer(data, "offset", c.DEFAULT_OFFSET, low=0, high=d.MAX_OFFSET)
    return SearchRequest(query=query, limit=limit, offset=offset, filters=_filters(data))


def partial_paging(data: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Best-effort offset and limit of a body, for the request log even when it is refused."""
    values: list[int | None] = []
    for name in ("offset", "limit"):
        values.append(_as_integer(data.get(name)))
    return values[0], values[1]


def _kind(value: object) -> str:
    """How a refusal names a JSON value of the wrong type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def _as_integer(value: object) -> int | None:
    """The integer a JSON number stands for (27 and 27.0 alike), else None."""
    if isinstance(value, bool):  # JSON true is not a number
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _integer(data: Mapping[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    if name not in data:
        return default
    value = data[name]
    bounds = f"between {low} and {high}"
    number = _as_integer(value)
    if number is None:
        raise RequestError(f"Invalid field: {name} must be an integer {bounds}, got {_kind(value)}")
    if not low <= number <= high:
        raise RequestError(f"Invalid field: {name} must be an integer {bounds}, got {number}")
    return number


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"Invalid field: {name} must be a number, got {_kind(value)}")
    if value < 0:
        raise RequestError(f"Invalid field: {name} must not be negative")
    return value


def _filters(data: Mapping[str, Any]) -> RankFilters:
    if "filters" not in data:
        return NO_FILTERS
    raw = data["filters"]
    if not isinstance(raw, dict):
        raise RequestError(f"Invalid field: filters must be an object, got {_kind(raw)}")

    genres: frozenset[str] | None = None
    if "genres" in raw:
        raw_genres = raw["genres"]
        if not isinstance(raw_genres, list) or not all(
            isinstance(g, str) and g.strip() for g in raw_genres
        ):
            raise RequestError(
                "Invalid field: filters.genres must be an array of non-empty strings"
                + ("" if isinstance(raw_genres, list) else f", got {_kind(raw_genres)}")
            )
        # An empty list narrows nothing, like leaving the filter out.
        genres = frozenset(g.strip().casefold() for g in raw_genres) or None

    duration_min = duration_max = None
    if "duration" in raw:
        duration = raw["duration"]
        if not isinstance(duration, dict):
            raise RequestError(
                "Invalid field: filters.duration must be an object with min and/or max seconds, "
                f"got {_kind(duration)}"
            )
        if "min" in duration:
            duration_min = _number(duration["min"], "filters.duration.min")
        if "max" in duration:
            duration_max = _number(duration["max"], "filters.duration.max")
        # min > max is a range that holds no track: an empty answer, not a refusal,
        # as a database query would give (the documentation says nothing either way).

    min_play_count = min_likes = None
    if "min_play_count" in raw:
        min_play_count = _number(raw["min_play_count"], "filters.min_play_count")
    if "min_likes" in raw:
        min_likes = _number(raw["min_likes"], "filters.min_likes")

    created_after = None
    if "created_after" in raw:
        raw_date = raw["created_after"]
        if not isinstance(raw_date, str) or not _DATE.fullmatch(raw_date):
            shown = "" if isinstance(raw_date, str) else f", got {_kind(raw_date)}"
            raise RequestError(
                f"Invalid field: filters.created_after must be a date as YYYY-MM-DD{shown}"
            )
        try:
            created_after = _dt.date.fromisoformat(raw_date)
        except ValueError:
            raise RequestError(
                f"Invalid field: filters.created_after is not a real date: {raw_date}"
            ) from None

    return RankFilters(
        genres=genres,
        duration_min=duration_min,
        duration_max=duration_max,
        min_play_count=min_play_count,
        min_likes=min_likes,
        created_after=created_after,
    )
