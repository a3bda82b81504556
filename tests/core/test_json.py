"""`_json`: the SDK's one JSON codec (msgspec) outside the answer decode, with its errors mapped."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from audioscape_async import _json
from audioscape_async._json import JSONError


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"{query: jazz", "malformed"),
        (b"", "truncated"),
        (b'"\xff"', "UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
        (b"1" + b"0" * 5000, "out of range"),
        (b'{"a": 1} trailing', "trailing"),
    ],
    ids=["malformed", "empty", "bad-utf8", "deep", "huge-int", "trailing"],
)
def test_loads_raises_json_error_saying_why(data: bytes, says: str) -> None:
    """Whatever is wrong with the bytes (deep nesting included) is a JSONError that says what."""
    with pytest.raises(JSONError, match=says):
        _json.loads(data)


def test_json_error_is_a_value_error() -> None:
    """JSONError is a ValueError, as the JSON errors of the standard library and orjson are."""
    assert issubclass(JSONError, ValueError)


def test_dumps_is_compact_and_round_trips() -> None:
    """dumps writes compact JSON in key order that loads (and the standard library) read back."""
    value = {"query": "Épica", "limit": 20, "filters": {"genres": ["lo-fi"], "min": 1.5}, "n": None}
    encoded = _json.dumps(value)
    assert encoded == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert _json.loads(encoded) == value
    assert _json.loads(encoded.decode()) == value


def test_dumps_sorted_gives_equal_values_equal_bytes() -> None:
    """Every object's keys sorted, at any depth: two equal dicts written in different orders
    give the same bytes (what a cache key needs), and read back equal."""
    one = {"query": "jazz", "filters": {"min_likes": 3, "genres": ["b", "a"]}, "limit": 20}
    other = {"limit": 20, "filters": {"genres": ["b", "a"], "min_likes": 3}, "query": "jazz"}
    assert _json.dumps(one) != _json.dumps(other)
    assert _json.dumps_sorted(one) == _json.dumps_sorted(other)
    expected = json.dumps(one, separators=(",", ":"), sort_keys=True).encode()
    assert _json.dumps_sorted(one) == expected
    assert _json.loads(_json.dumps_sorted(one)) == one


def test_dumps_pretty_indents_by_two_spaces() -> None:
    """dumps_pretty writes what json.dumps(indent=2) writes, UTF-8 and not escaped."""
    value = {"tracks": [{"name": "Épica", "bpm": 120.0}], "meta": {"matched_artist": None}}
    assert _json.dumps_pretty(value) == json.dumps(value, indent=2, ensure_ascii=False).encode()


def test_importing_the_clients_loads_no_json_library_nor_file_formats() -> None:
    """Importing both clients loads neither msgspec nor orjson (the first search does), nor the
    csv and gzip modules only a crawl to those formats needs."""
    code = (
        "import sys\n"
        "from audioscape_async import AsyncClient, Client\n"
        "print(sorted(m for m in ('msgspec', 'orjson', 'csv', 'gzip') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
