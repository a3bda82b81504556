"""JSON in and out for everything but an answer's decode (that is `_decode`).

One C library for the SDK's JSON: msgspec, which decodes answers too. Its encoders and decoder are
made once, on first use, so that `import audioscape_async` pays for none of
it; a search encodes its body just before it decodes the answer, which loads
msgspec anyway.

`loads` raises `JSONError` (a ValueError) for anything that is not one JSON
document: malformed, truncated, invalid UTF-8, a number out of range, or
nested past msgspec's limit, where msgspec raises RecursionError, which must
not escape as one. `dumps` takes only what JSON holds (dicts with str keys,
lists, str, int, float, bool, None); the SDK hands it nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["JSONError", "dumps", "dumps_pretty", "dumps_sorted", "loads"]


class JSONError(ValueError):
    """Bytes that are not one JSON document; the message says why."""


#: msgspec's encoders and decoder, all made by `_load` on the first use of any.
_encode: Callable[[Any], bytes] | None = None
_encode_sorted: Callable[[Any], bytes] | None = None
_decode: Callable[[bytes | str], Any] | None = None


def _load() -> tuple[Callable[[Any], bytes], Callable[[Any], bytes], Callable[[bytes | str], Any]]:
    global _encode, _encode_sorted, _decode
    import msgspec

    _encode = msgspec.json.Encoder().encode
    _encode_sorted = msgspec.json.Encoder(order="sorted").encode
    _decode = msgspec.json.Decoder().decode
    return _encode, _encode_sorted, _decode


def dumps(value: Any) -> bytes:
    """`value` as compact JSON bytes, keys in their order."""
    encode = _encode
    if encode is None:
        encode = _load()[0]
    return encode(value)


def dumps_sorted(value: Any) -> bytes:
    """`value` as compact JSON bytes, every object's keys sorted (equal values, equal bytes)."""
    encode = _encode_sorted
    if encode is None:
        encode = _load()[1]
    return encode(value)


def dumps_pretty(value: Any) -> bytes:
    """`value` as JSON bytes indented by two spaces."""
    import msgspec

    return msgspec.json.format(dumps(value), indent=2)


def loads(data: bytes | str) -> Any:
    """The Python value of one JSON document; `JSONError` if it is not one."""
    decode = _decode
    if decode is None:
        decode = _load()[2]
    try:
        return decode(data)
    except RecursionError:
        raise JSONError("it is nested too deeply") from None
    except ValueError as error:  # msgspec.DecodeError, and str of a surrogate
        raise JSONError(str(error)) from None
