"""JSON bytes of a successful answer to a `SearchResponse`, strictly and fast.

Every answer first goes through msgspec, which parses the JSON straight into
the SDK's own slotted attrs classes, in C, checking each field's exact type as
it reads it (a JSON ``true`` is not a number, ``"120"`` is not a number, 120 is
not a string; an integer is a number) and skipping the fields the
documentation does not list, so the server may add some without breaking old
clients (it checks that they are JSON, but not that their numbers would fit a
float). It reads every integer exactly, however large. It reads into `_Page`,
the documented fields only, so that no body can set the page's request id or
anything else the SDK adds about the HTTP exchange.

msgspec is stricter than the SDK in one place: it refuses ``20.0`` for an
integer, and some JSON encoders write whole numbers that way. So an answer it
refuses is read again, untyped, and structured by one function per model
class, generated from the class's own attrs fields (so it cannot drift from
the model): as strict as msgspec, except that a whole float is an integer.
Only when that fails too does a cattrs converter with detailed validation run
over the same data, to say exactly which field was missing or wrong.

msgspec, the generated functions and cattrs are each loaded on first use, so
that `import audioscape_async` pays for none of them (see benchmarks/imports.py).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict, TypeVar

import attrs

from ._exceptions import APIResponseValidationError
from ._models import AlbumSummary, ArtistSummary, SearchMeta, SearchResponse, Track

if TYPE_CHECKING:
    import cattrs

T = TypeVar("T")


class _Page(TypedDict):
    """What msgspec reads: the fields of `SearchResponse` that come from the JSON."""

    tracks: tuple[Track, ...]
    artists: tuple[ArtistSummary, ...]
    albums: tuple[AlbumSummary, ...]
    meta: SearchMeta


@cache
def _read_page() -> Callable[[bytes], _Page]:
    import msgspec

    return msgspec.json.Decoder(_Page).decode


def decode_search_response(content: bytes, request_id: str | None = None) -> SearchResponse:
    """Parse and check one answer; raise `APIResponseValidationError` if it is not valid."""
    try:
        if not content.isascii():
            # msgspec checks the UTF-8 of the strings it reads, not of those it skips.
            content.decode()
        page = _read_page()(content)
    except Exception:
        return _decode_slowly(content, request_id)
    return SearchResponse(
        tracks=page["tracks"],
        artists=page["artists"],
        albums=page["albums"],
        meta=page["meta"],
        request_id=request_id,
    )


def _decode_slowly(content: bytes, request_id: str | None) -> SearchResponse:
    """Decode an answer msgspec refused, or raise the error that says what is wrong with it."""
    import msgspec

    try:
        data = msgspec.json.decode(content)
    except Exception as error:  # a DecodeError, or a RecursionError past its nesting limit
        snippet = content[:80].decode("utf-8", "replace")
        _fail(f"is not valid JSON ({error}); it starts with {snippet!r}", None, request_id)
    try:
        return _structure()(data, request_id)
    except Exception:
        # Every decoding failure, whatever it raised, becomes one error type.
        _fail(f"does not match the documented shape: {_explain(data)}", data, request_id)


def _wrong(expected: str, value: object) -> TypeError:
    return TypeError(f"expected {expected}, got {type(value).__name__} {value!r:.80}")


def _number(value: object) -> float:
    # A bool is an int to Python, but a JSON true must not pass as 1.0.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _wrong("a number", value)


def _integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # Some JSON encoders write whole numbers as 20.0; they are still integers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _wrong("an integer", value)


def _string(value: object) -> str:
    if type(value) is str:
        return value
    raise _wrong("a string", value)


# What the generated code does with a field, by its declared type. Each check
# is inlined for the common case and calls out only for the rest.
_CHECKS: dict[object, str] = {
    str: "if type({v}) is not str: {v} = _string({v})",
    float: "if type({v}) is not float: {v} = _number({v})",
    int: "if type({v}) is not int: {v} = _integer({v})",
    str | None: "if {v} is not None and type({v}) is not str: {v} = _string({v})",
}


def _compile(cls: type[T]) -> Callable[[Any], T]:
    """Generate the structure function of a flat attrs class."""
    hints = typing.get_type_hints(cls)
    names = [field.name for field in attrs.fields(cls)]  # type: ignore[arg-type]
    lines = ["def structure(data):"]
    for index, name in enumerate(names):
        lines.append(f"    v{index} = data[{name!r}]")
        lines.append("    " + _CHECKS[hints[name]].format(v=f"v{index}"))
    arguments = ", ".join(f"v{index}" for index in range(len(names)))
    lines.append(f"    return cls({arguments})")
    namespace: dict[str, Any] = {
        "cls": cls,
        "_string": _string,
        "_number": _number,
        "_integer": _integer,
    }
    exec("\n".join(lines), namespace)
    return namespace["structure"]  # type: ignore[no-any-return]


def _list(value: object) -> list[Any]:
    if type(value) is list:
        return value
    raise _wrong("a list", value)


@cache
def _structure() -> Callable[[Any, str | None], SearchResponse]:
    """The structure function of a whole answer, generated on the first answer msgspec refuses."""
    track, artist = _compile(Track), _compile(ArtistSummary)
    album, meta = _compile(AlbumSummary), _compile(SearchMeta)

    def structure(data: Any, request_id: str | None) -> SearchResponse:
        return SearchResponse(
            tracks=tuple([track(item) for item in _list(data["tracks"])]),
            artists=tuple([artist(item) for item in _list(data["artists"])]),
            albums=tuple([album(item) for item in _list(data["albums"])]),
            meta=meta(data["meta"]),
            request_id=request_id,
        )

    return structure


def _is(expected: object) -> Callable[[Any], bool]:
    return lambda kind: bool(kind == expected)


def _array_of(items: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, kind: Any) -> Any:
        return items(_list(value), kind)

    return structure


@cache
def _detailed_converter() -> cattrs.Converter:
    """The slow, exact twin of the structure functions, built on the first failure it explains."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn, override

    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    converter.register_structure_hook(str, lambda value, _: _string(value))
    converter.register_structure_hook(float, lambda value, _: _number(value))
    converter.register_structure_hook(int, lambda value, _: _integer(value))
    # cattrs turns any iterable into a tuple ("" and {} into ()); the fast path
    # wants a JSON array, so the explanation must too, or it names no field.
    for many in (tuple[Track, ...], tuple[ArtistSummary, ...], tuple[AlbumSummary, ...]):
        items = converter.get_structure_hook(many)
        converter.register_structure_hook_func(_is(many), _array_of(items))
    # The fields that do not come from the JSON (the request id, ...) are not read from it.
    omitted = {
        field.name: override(omit=True)
        for field in attrs.fields(SearchResponse)
        if field.name not in _Page.__annotations__
    }
    converter.register_structure_hook(
        SearchResponse,
        make_dict_structure_fn(SearchResponse, converter, **omitted),  # type: ignore[arg-type]
    )
    return converter


def _explain(data: object) -> str:
    """Say what is wrong with `data`, once the structure functions have found it wrong."""
    import cattrs

    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    try:
        _detailed_converter().structure(data, SearchResponse)
    except cattrs.BaseValidationError as error:
        return "; ".join(cattrs.transform_error(error, path="response")[:5])
    except Exception as error:  # any failure is explained here, not raised
        return f"{type(error).__name__}: {error}"
    return "the answer does not have the documented shape"


def _fail(message: str, data: object, request_id: str | None) -> NoReturn:
    raise APIResponseValidationError(
        f"the API answered with a body that {message}", body=data, request_id=request_id
    )
