"""The emulated contract as an OpenAPI 3.0 document.

The API's documentation is a web page, not a schema; this is that page
transcribed, with the choices the emulator makes where the page is silent
(see "What is documented and what is assumed" in docs/testing.md): `limit` and
`offset` are numbers with whole values (`27.0` is 27, `27.5` is refused; the
answer's `meta` gives them back as integers), `null` is a wrong type in every
field, `offset` stops at 2**53 - 1, a blank `query` is missing, unknown
fields are ignored (so objects stay open). Responses are exactly the
documented shapes. `audioscape serve --openapi` prints it, so a contract
tester (schemathesis, for one) can be pointed at a running emulator, and the
emulator's own suite does exactly that.
"""

from __future__ import annotations

from typing import Any

from audioscape_async import _constants as c
from audioscape_async._version import __version__

from . import _defaults as d


def _error(description: str, example: str, key: str = "error") -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            c.JSON_CONTENT_TYPE: {
                "schema": {
                    "type": "object",
                    "required": [key],
                    "properties": {key: {"type": "string"}},
                },
                "example": {key: example},
            }
        },
    }


_NUMBER_AT_LEAST_0: dict[str, Any] = {"type": "number", "minimum": 0}

_FILTERS: dict[str, Any] = {
    "type": "object",
    "description": "Narrow your results; every field is optional.",
    "properties": {
        "genres": {
            "type": "array",
            "description": 'Roblox music genre slugs (e.g. "electronic", "pop").',
            "items": {"type": "string", "minLength": 1, "pattern": r"\S"},
        },
        "duration": {
            "type": "object",
            "description": "Track length in seconds; min above max matches nothing.",
            "properties": {"min": _NUMBER_AT_LEAST_0, "max": _NUMBER_AT_LEAST_0},
        },
        "min_play_count": {**_NUMBER_AT_LEAST_0, "description": "Minimum lifetime play count."},
        "min_likes": {**_NUMBER_AT_LEAST_0, "description": "Minimum lifetime like count."},
        "created_after": {
            "type": "string",
            "format": "date",
            "description": "Earliest asset creation date, YYYY-MM-DD.",
        },
    },
}

_SEARCH_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["query"],
    "properties": {
        "query": {
            "type": "string",
            "minLength": 1,
            "pattern": r"\S",
            "description": "An artist name, mood, genre, or description.",
        },
        # The documentation types both as "number": any JSON number with a whole value.
        "limit": {
            "type": "number",
            "multipleOf": 1,
            "minimum": 1,
            "maximum": c.MAX_LIMIT,
            "default": c.DEFAULT_LIMIT,
            "description": "Maximum results to return.",
        },
        "offset": {
            "type": "number",
            "multipleOf": 1,
            "minimum": 0,
            "maximum": d.MAX_OFFSET,
            "default": c.DEFAULT_OFFSET,
            "description": "Pagination offset.",
        },
        "filters": _FILTERS,
    },
}

_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}

_SEARCH_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["tracks", "artists", "albums", "meta"],
    "properties": {
        "tracks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "asset_id",
                    "name",
                    "artist",
                    "album",
                    "duration",
                    "genre",
                    "bpm",
                    "score",
                ],
                "properties": {
                    "asset_id": {"type": "string"},
                    "name": {"type": "string"},
                    "artist": {"type": "string"},
                    "album": {"type": "string"},
                    "duration": {"type": "number"},
                    "genre": {"type": "string"},
                    "bpm": {"type": "number"},
                    "score": {"type": "number"},
                },
            },
        },
        "artists": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "track_count"],
                "properties": {"name": {"type": "string"}, "track_count": _COUNT},
            },
        },
        "albums": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "artist", "track_count"],
                "properties": {
                    "name": {"type": "string"},
                    "artist": {"type": "string"},
                    "track_count": _COUNT,
                },
            },
        },
        "meta": {
            "type": "object",
            "required": ["total", "limit", "offset", "search_method", "matched_artist"],
            "properties": {
                "total": _COUNT,
                "limit": {"type": "integer", "minimum": 1, "maximum": c.MAX_LIMIT},
                "offset": _COUNT,
                "search_method": {"type": "string", "enum": ["semantic", "text"]},
                "matched_artist": {"type": "string", "nullable": True},
            },
        },
    },
}


def openapi_document(server_url: str = c.DEFAULT_BASE_URL) -> dict[str, Any]:
    """The contract of `POST /search` as an OpenAPI 3.0.3 document.

    `server_url` is the base URL put in `servers` (the real API's by default;
    pass an emulator's `url` to point a tool at it).

        >>> openapi_document()["paths"]["/search"]["post"]["operationId"]
        'searchMusic'
    """
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "AudioScape Developer API (as emulated by audioscape-async)",
            "version": __version__,
            "description": (
                "Search the catalog of music using natural language. Transcribed from the "
                "API's documentation; where it is silent, the emulator's assumptions apply."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": c.API_KEY_HEADER}
            }
        },
        "paths": {
            c.SEARCH_PATH: {
                "post": {
                    "operationId": "searchMusic",
                    "summary": "Search Music",
                    "requestBody": {
                        "required": True,
                        "content": {c.JSON_CONTENT_TYPE: {"schema": _SEARCH_REQUEST}},
                    },
                    "responses": {
                        "200": {
                            "description": "Matching tracks, with grouped artists and albums.",
                            "content": {c.JSON_CONTENT_TYPE: {"schema": _SEARCH_RESPONSE}},
                        },
                        "400": _error("Missing or invalid parameters.", d.ERROR_MISSING_QUERY),
                        "401": _error("Invalid or missing API key.", d.ERROR_INVALID_KEY),
                        "408": _error(
                            "The request body did not arrive in time (emulator only).",
                            "Request body not received within 10 s",
                        ),
                        "413": _error(
                            "The request body is too large (emulator only).",
                            f"Request body too large (limit {d.MAX_BODY_BYTES} bytes)",
                        ),
                        "429": {
                            **_error(
                                "Rate limit exceeded.", d.MESSAGE_TOO_MANY_REQUESTS, key="message"
                            ),
                            "headers": {
                                c.RETRY_AFTER_HEADER: {
                                    "required": False,
                                    "description": (
                                        "Not in the API's documentation: the emulator sends "
                                        "it only when a fault or rate limit asks for one."
                                    ),
                                    "schema": {"type": "string"},
                                }
                            },
                        },
                        "500": _error("Something went wrong.", d.ERROR_INTERNAL),
                    },
                }
            }
        },
    }
