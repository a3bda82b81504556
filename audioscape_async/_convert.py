"""Mappings to models: a fast reader in C and the one cattrs converter.

Two readers turn a mapping of JSON values into the SDK's models, by the same
rules: each field takes its JSON type only (a JSON ``true`` is not a number,
``"120"`` is not a number, 120 is not a string; an integer is a number), a
whole float is an integer (some JSON encoders write 20 as ``20.0``), an array
is a list (or a tuple), and keys the models do not have are ignored.

- `structure` is the fast one: msgspec's ``convert``, in C, after the few
  integer fields (none in a track) have had whole floats made integers. On bad
  data it raises, and says nothing useful about it.
- `structure_slowly` is the exact, slow twin: a cattrs converter with detailed
  validation and a hook per JSON type. It runs only once `structure` has
  failed, reads what `structure` could not (a mapping that is not a dict all
  the way down), or raises `ShapeError` saying which fields were missing or
  wrong, by path.

The decoder reads an answer msgspec refused this way (see `_decode`); the
models' `from_dict` classmethods go through `from_dict`, which turns a
`ShapeError` into an `InvalidParameterError` naming the first bad field.
Neither generates code of its own.

cattrs, measured against the alternatives (``python -m benchmarks --only
decode``, row 2 of benchmarks/results.md): as the reader of a page it is
several times slower than msgspec's typed conversion, so it explains and does
not read; its ``unstructure`` is slower than the hand-written `to_dict`, so
`to_dict` stays hand-written. msgspec and cattrs are loaded on first use, so that `import
audioscape_async` pays for neither (see benchmarks/imports.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import attrs

from ._exceptions import InvalidParameterError
from ._models import AlbumSummary, ArtistSummary, SearchMeta, SearchResponse, Track

if TYPE_CHECKING:
    import cattrs

__all__ = ["Page", "ShapeError", "from_dict", "json_fields", "structure", "structure_slowly"]

T = TypeVar("T")


class _Wrong(TypeError):
    """A value of the wrong JSON type; its message is shown as is."""


def _wrong(expected: str, value: object) -> _Wrong:
    return _Wrong(f"expected {expected}, got {type(value).__name__} {value!r:.80}")


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


def _array(value: object) -> list[Any] | tuple[Any, ...]:
    # cattrs would take any iterable ("" and {} as empty); JSON means an array.
    if type(value) is list or type(value) is tuple:
        return value
    raise _wrong("an array", value)


def json_fields(cls: type[Any]) -> list[str]:
    """The fields of a model that come from its JSON object, in order.

    The others (a page's `request_id`, `headers`, ...) tell the exchange that
    brought it, outside ``==`` and ``repr``; no mapping may set them.
    """
    return [field.name for field in attrs.fields(cls) if field.eq]


class Page(TypedDict):
    """A page as read from a mapping: the fields of `SearchResponse` that come from its JSON."""

    tracks: tuple[Track, ...]
    artists: tuple[ArtistSummary, ...]
    albums: tuple[AlbumSummary, ...]
    meta: SearchMeta


#: Where a mapping of each model class holds integers, and models (``[]``: a list of them).
_INTEGERS: dict[type[Any], tuple[str, ...]] = {
    Track: (),
    ArtistSummary: ("track_count",),
    AlbumSummary: ("track_count",),
    SearchMeta: ("total", "limit", "offset"),
}
_NESTED: tuple[tuple[str, type[Any], bool], ...] = (
    ("artists", ArtistSummary, True),
    ("albums", AlbumSummary, True),
    ("meta", SearchMeta, False),
)


def _mend(data: Any, cls: type[Any]) -> Any:
    """`data` with each whole float where `cls` wants an integer made one; copied if changed."""
    if type(data) is not dict:
        return data
    mended = data
    if cls is SearchResponse:
        # Tracks hold no integers: a page's hundreds of them are never looked at.
        for name, kind, many in _NESTED:
            value = data.get(name)
            if many and type(value) is list:
                fixed: Any = [_mend(item, kind) for item in value]
                changed = any(a is not b for a, b in zip(fixed, value, strict=True))
            else:
                fixed = _mend(value, kind)
                changed = fixed is not value
            if changed:
                mended = mended if mended is not data else dict(data)
                mended[name] = fixed
        return mended
    for name in _INTEGERS[cls]:
        value = data.get(name)
        if type(value) is float and value.is_integer():
            mended = mended if mended is not data else dict(data)
            mended[name] = int(value)
    return mended


def structure(data: Any, cls: type[T]) -> T:
    """`data` as a `cls`, fast (msgspec, in C); on bad data it raises (then ask `problems`)."""
    import msgspec

    if isinstance(data, Mapping) and type(data) is not dict:
        data = dict(data)
    data = _mend(data, cls)
    if cls is not SearchResponse:
        return msgspec.convert(data, cls)
    page = msgspec.convert(data, Page)
    return SearchResponse(page["tracks"], page["artists"], page["albums"], page["meta"])  # type: ignore[return-value]


def _is(expected: object) -> Callable[[Any], bool]:
    return lambda kind: bool(kind == expected)


def _array_of(items: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, kind: Any) -> Any:
        return items(_array(value), kind)

    return structure


@cache
def _converter() -> cattrs.Converter:
    """The slow, exact twin of the structure functions, built on the first failure it explains."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn, override

    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    converter.register_structure_hook(str, lambda value, _: _string(value))
    converter.register_structure_hook(float, lambda value, _: _number(value))
    converter.register_structure_hook(int, lambda value, _: _integer(value))
    for many in (tuple[Track, ...], tuple[ArtistSummary, ...], tuple[AlbumSummary, ...]):
        items = converter.get_structure_hook(many)
        converter.register_structure_hook_func(_is(many), _array_of(items))
    # The fields that tell the exchange (the request id, ...) are not read from a mapping.
    read = json_fields(SearchResponse)
    omitted = {
        field.name: override(omit=True)
        for field in attrs.fields(SearchResponse)
        if field.name not in read
    }
    converter.register_structure_hook(
        SearchResponse,
        make_dict_structure_fn(SearchResponse, converter, **omitted),  # type: ignore[arg-type]
    )
    return converter


def _say(error: BaseException, kind: type | None) -> str:
    import cattrs.v

    if isinstance(error, _Wrong):
        return str(error)
    return cattrs.v.format_exception(error, kind)


class ShapeError(Exception):
    """Data that is not a model: `problems` are ``(path, message)`` pairs, at least one."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{message} @ {path}" for path, message in problems[:5]))
        self.problems = problems


def structure_slowly(data: object, cls: type[T], path: str) -> T:
    """`data` as a `cls` by the converter (exact, slow), or `ShapeError` saying what is wrong.

    Paths start with `path` and name the field, as in ``response.tracks[0].bpm``.
    """
    import cattrs

    if not isinstance(data, Mapping):
        raise ShapeError([(path, f"expected an object, got {type(data).__name__}")])
    try:
        return _converter().structure(data, cls)
    except cattrs.BaseValidationError as error:
        found = []
        for line in cattrs.transform_error(error, path=path, format_exception=_say):
            message, _, where = line.rpartition(" @ ")
            found.append((where, message))
        raise ShapeError(found or [(path, str(error))]) from None
    except Exception as error:  # any failure is explained here
        raise ShapeError([(path, f"{type(error).__name__}: {error}")]) from None


def from_dict(cls: type[T], mapping: Mapping[str, Any]) -> T:
    """`mapping` as a `cls`, or `InvalidParameterError` naming the first bad field."""
    if isinstance(mapping, Mapping):
        try:
            return structure(mapping, cls)
        except Exception:  # read again, by the converter
            pass
    try:
        return structure_slowly(mapping, cls, cls.__name__)
    except ShapeError as error:
        (where, message), others = error.problems[0], error.problems[1:]
    if others:
        message += "; also " + "; ".join(f"{path}: {text}" for path, text in others[:4])
    raise InvalidParameterError(where, message) from None
