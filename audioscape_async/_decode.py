"""JSON bytes of a successful answer to a `SearchResponse`, strictly and fast.

Every answer first goes through msgspec, which parses the JSON straight into
the SDK's own slotted attrs classes, in C, checking each field's exact type as
it reads it (a JSON ``true`` is not a number, ``"120"`` is not a number, 120 is
not a string; an integer is a number) and skipping the fields the
documentation does not list, so the server may add some without breaking old
clients (it checks that they are JSON, but not that their numbers would fit a
float). It reads every integer exactly, however large. It reads into `Page`,
the documented fields only, so that no body can set the page's request id or
anything else the SDK adds about the HTTP exchange.

msgspec builds the instances of the frozen models without calling their
``__init__`` (so frozen costs nothing here), and the page itself once, with
what the pipeline tells of the exchange that brought it.

msgspec is stricter than the SDK in one place: it refuses ``20.0`` for an
integer, and some JSON encoders write whole numbers that way. So an answer it
refuses is read again, untyped, and structured by `_convert.structure`: as
strict as msgspec, except that a whole float is an integer. Only when that
fails too does the cattrs converter (`_convert.structure_slowly`) run over the
same data, to read it or to say exactly which field was missing or wrong.

msgspec and cattrs are each loaded on first use, so that `import
audioscape_async` pays for neither (see benchmarks/imports.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, NoReturn

import attrs

from ._convert import Page, ShapeError, structure, structure_slowly
from ._exceptions import APIResponseValidationError
from ._models import SearchResponse

if TYPE_CHECKING:
    import httpx


@cache
def _read_page() -> Callable[[bytes], Page]:
    import msgspec

    return msgspec.json.Decoder(Page).decode


def decode_search_response(
    content: bytes,
    request_id: str | None = None,
    *,
    status_code: int | None = None,
    headers: httpx.Headers | None = None,
    elapsed: float | None = None,
    attempts: int = 1,
) -> SearchResponse:
    """Parse and check one answer; raise `APIResponseValidationError` if it is not valid.

    The keywords tell the exchange that brought it (see `SearchResponse`);
    the page is frozen, so they go in as it is made.
    """
    try:
        if not content.isascii():
            # msgspec checks the UTF-8 of the strings it reads, not of those it skips.
            content.decode()
        page = _read_page()(content)
    except Exception:
        return attrs.evolve(
            _decode_slowly(content, request_id),
            request_id=request_id, status_code=status_code, headers=headers, elapsed=elapsed,
            attempts=attempts,
        )  # fmt: skip
    return SearchResponse(
        page["tracks"],
        page["artists"],
        page["albums"],
        page["meta"],
        request_id,
        status_code,
        headers,
        elapsed,
        attempts,
    )


def _decode_slowly(content: bytes, request_id: str | None) -> SearchResponse:
    """Structure an answer msgspec refused (without its exchange), or raise what is wrong."""
    import msgspec

    try:
        data = msgspec.json.decode(content)
    except Exception as error:  # a DecodeError, or a RecursionError past its nesting limit
        snippet = content[:80].decode("utf-8", "replace")
        _fail(f"is not valid JSON ({error}); it starts with {snippet!r}", None, request_id)
    try:
        return structure(data, SearchResponse)
    except Exception:  # read again, by the converter
        pass
    if not isinstance(data, dict):
        shape = f"expected a JSON object, got {type(data).__name__}"
        _fail(f"does not match the documented shape: {shape}", data, request_id)
    try:
        return structure_slowly(data, SearchResponse, "response")
    except ShapeError as error:
        # Every decoding failure, whatever it raised, becomes one error type.
        _fail(f"does not match the documented shape: {error}", data, request_id)


def _fail(message: str, data: object, request_id: str | None) -> NoReturn:
    raise APIResponseValidationError(
        f"the API answered with a body that {message}", body=data, request_id=request_id
    )
