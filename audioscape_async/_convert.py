"""Mappings to models: the structure functions and the one cattrs converter.

Two readers turn a mapping of JSON values into the SDK's models, by the same
rules: each field takes its JSON type only (a JSON ``true`` is not a number,
``"120"`` is not a number, 120 is not a string; an integer is a number), a
whole float is an integer (some JSON encoders write 20 as ``20.0``), an array
is a list (or a tuple), and keys the models do not have are ignored.

- `structure` is the fast one: a function per flat model class, generated once
  from the class's own attrs fields (so it cannot drift from the model), that
  checks each field inline. It raises whatever it meets on bad data and says
  nothing useful about it.
- The cattrs converter (`_converter`, with detailed validation) is the exact,
  slow twin; it runs only once `structure` has failed, to say which fields
  were missing or wrong, by path (`problems`).

The decoder reads an answer msgspec refused with `structure`, and explains
one that `structure` refuses with `problems` (see `_decode`). The models'
`from_dict` classmethods go through `from_dict` here: `structure`, else an
`InvalidParameterError` naming the first bad field.

cattrs, measured against the alternatives (benchmarks/results.md has the
figures of the decode benchmark): as the structure function of a 100-track
page it took about 3.5 times the generated functions (2.6 times without
detailed validation), because it calls a hook per field where the generated
code checks inline, so it explains and does not structure; and its
``unstructure`` took 1.7 times the hand-written `to_dict` of a track, so
`to_dict` stays hand-written.

The converter and the generated functions are made on first use, so that
`import audioscape_async` pays for neither (see benchmarks/imports.py).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ._exceptions import InvalidParameterError
from ._models import AlbumSummary, ArtistSummary, SearchMeta, SearchResponse, Track

if TYPE_CHECKING:
    import cattrs

__all__ = ["from_dict", "json_fields", "problems", "structure"]

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
    names = json_fields(cls)
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


@cache
def _structure_page() -> Callable[[Any], SearchResponse]:
    track, artist = _structurer(Track), _structurer(ArtistSummary)
    album, meta = _structurer(AlbumSummary), _structurer(SearchMeta)

    def structure(data: Any) -> SearchResponse:
        return SearchResponse(
            tuple([track(item) for item in _array(data["tracks"])]),
            tuple([artist(item) for item in _array(data["artists"])]),
            tuple([album(item) for item in _array(data["albums"])]),
            meta(data["meta"]),
        )

    return structure


_structurers: dict[type[Any], Callable[[Any], Any]] = {}


def _structurer(cls: type[T]) -> Callable[[Any], T]:
    made = _structurers.get(cls)
    if made is None:
        made = _structurers[cls] = _structure_page() if cls is SearchResponse else _compile(cls)
    return made  # type: ignore[return-value]


def structure(data: Any, cls: type[T]) -> T:
    """`data` as a `cls`, fast; on bad data it raises anything (then ask `problems`)."""
    return _structurer(cls)(data)


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


def problems(data: object, cls: type[Any], path: str) -> list[tuple[str, str]]:
    """What is wrong with `data` as a `cls`: ``(path, message)`` pairs, at least one.

    Paths start with `path` and name the field, as in ``response.tracks[0].bpm``.
    """
    import cattrs

    if not isinstance(data, Mapping):
        return [(path, f"expected an object, got {type(data).__name__}")]
    try:
        _converter().structure(data, cls)
    except cattrs.BaseValidationError as error:
        found = []
        for line in cattrs.transform_error(error, path=path, format_exception=_say):
            message, _, where = line.rpartition(" @ ")
            found.append((where, message))
        if found:
            return found
        return [(path, str(error))]
    except Exception as error:  # any failure is explained here, not raised
        return [(path, f"{type(error).__name__}: {error}")]
    return [(path, "does not have the documented shape")]


def from_dict(cls: type[T], mapping: Mapping[str, Any]) -> T:
    """`mapping` as a `cls`, or `InvalidParameterError` naming the first bad field."""
    if isinstance(mapping, Mapping):
        try:
            return structure(mapping, cls)
        except Exception:  # explained below, by the converter
            pass
    name = cls.__name__
    found = problems(mapping, cls, name)
    (where, message), others = found[0], found[1:]
    if others:
        message += "; also " + "; ".join(f"{path}: {text}" for path, text in others[:4])
    raise InvalidParameterError(where, message) from None
