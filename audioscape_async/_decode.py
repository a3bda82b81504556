"""JSON bytes of a successful answer to a `SearchResponse`, strictly.

Two cattrs converters share one set of strict hooks. The fast one is built
without detailed validation and does the work on every answer; only when it
fails does the detailed one run again over the same data, to say exactly which
field was missing or of the wrong type. Fields the documentation does not list
are ignored, so the server may add some without breaking old clients.
"""

from __future__ import annotations

from typing import Any, NoReturn

import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, override

from ._exceptions import APIResponseValidationError
from ._models import SearchResponse


def _strict_str(value: Any, _: type) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.80}")


def _strict_float(value: Any, _: type) -> float:
    # `type(...) is` rather than isinstance: a JSON true must not pass as 1.0.
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return float(value)
    raise TypeError(f"expected a number, got {kind.__name__} {value!r:.80}")


def _strict_int(value: Any, _: type) -> int:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    # Some JSON encoders write whole numbers as 20.0; they are still integers.
    if kind is float and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {kind.__name__} {value!r:.80}")


def _make_converter(*, detailed: bool) -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(int, _strict_int)
    # request_id comes from a header, never from the body.
    converter.register_structure_hook(
        SearchResponse,
        make_dict_structure_fn(
            SearchResponse,
            converter,
            _cattrs_detailed_validation=detailed,
            request_id=override(omit=True),
        ),
    )
    return converter


_fast = _make_converter(detailed=False)
_structure_fast = _fast.get_structure_hook(SearchResponse)
_detailed = _make_converter(detailed=True)


def _explain(data: object) -> str:
    """Say what is wrong with `data`, once the fast path has found it wrong."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    try:
        _detailed.structure(data, SearchResponse)
    except cattrs.BaseValidationError as error:
        return "; ".join(cattrs.transform_error(error, path="response")[:5])
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "the answer does not have the documented shape"


def _fail(message: str, data: object, request_id: str | None) -> NoReturn:
    raise APIResponseValidationError(
        f"the API answered with a body that {message}", body=data, request_id=request_id
    )


def decode_search_response(content: bytes, request_id: str | None = None) -> SearchResponse:
    """Parse and check one answer; raise `APIResponseValidationError` if it is not valid."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as error:
        snippet = content[:80].decode("utf-8", "replace")
        _fail(f"is not valid JSON ({error}); it starts with {snippet!r}", None, request_id)
    try:
        page: SearchResponse = _structure_fast(data, SearchResponse)
    except Exception:
        _fail(f"does not match the documented shape: {_explain(data)}", data, request_id)
    if request_id is not None:
        # Frozen: set the one field that does not come from the body the way attrs does.
        object.__setattr__(page, "request_id", request_id)
    return page
