"""(2) Decode: the JSON bytes of a 100-track page to typed objects.

- SDK: `audioscape_async._decode.decode_search_response` (msgspec, straight
  into the SDK's slotted attrs classes).
- SDK, a page that writes one integer as ``20.0``: msgspec refuses it, so the
  SDK reads the page again, untyped, mends the whole floats and converts it with
  msgspec (`_convert.structure`, the fallback).
- pydantic v2: `SearchResponse.model_validate_json` on models with the same
  fields and types, ``ConfigDict(strict=True)`` (extra keys ignored, the
  default). Strict mode checks types the way the SDK does: a JSON ``true`` or
  ``"120"`` is not a number, 120 is not a string, an int is accepted for a
  float. One difference, in pydantic's favour: strict pydantic rejects ``20.0``
  for an int field, which the SDK accepts.
- msgspec Structs (the floor): `msgspec.json.Decoder` of `msgspec.Struct`
  classes with the same fields (its default, strict, type checks).
- orjson.loads alone, untyped: the target's yardstick.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson

from audioscape_async._decode import decode_search_response

from ._common import Result, Settings, interleave_sync, medians, optional, spread
from ._msgspec_models import SearchResponse as MsgspecResponse
from ._server import _Pages

NAME = "decode"
SDK = "SDK decode_search_response"
FALLBACK = "SDK, meta.total written as 20.0 (fallback)"
ORJSON = "orjson.loads (untyped)"


def page_bytes() -> bytes:
    """The 100-track page every decode variant reads (the benchmark server's fixed answer)."""
    return _Pages(10_000).answer(b'{"limit": 100}').split(b"\r\n\r\n", 1)[1]


def run(settings: Settings) -> list[Result]:
    content = page_bytes()
    whole_float = content.replace(b'"total":10000,', b'"total":10000.0,')
    assert whole_float != content
    variants: dict[str, Any] = {
        SDK: lambda: decode_search_response(content, "req"),
        FALLBACK: lambda: decode_search_response(whole_float, "req"),
    }
    pydantic = optional("pydantic")
    if pydantic is not None:
        from ._pydantic_models import SearchResponse as PydanticResponse

        validate = PydanticResponse.model_validate_json
        variants["pydantic v2 strict"] = lambda: validate(content)
    decode = msgspec.json.Decoder(MsgspecResponse).decode
    variants["msgspec Structs"] = lambda: decode(content)
    variants[ORJSON] = lambda: orjson.loads(content)
    # Every variant must read the page the same: same tracks, same numbers.
    sdk = decode_search_response(content)
    assert decode_search_response(whole_float) == sdk
    for name, call in variants.items():
        value = call()
        if name.startswith(("pydantic", "msgspec")):
            assert len(value.tracks) == len(sdk.tracks) == 100
            assert value.tracks[-1].asset_id == sdk.tracks[-1].asset_id
            assert value.tracks[-1].bpm == sdk.tracks[-1].bpm
        call()
    # Decoding is all CPU: count this thread's CPU time, not the wall clock, so that other
    # processes on a shared machine do not land in one variant's rounds more than another's.
    samples = interleave_sync(
        variants,
        rounds=settings.pick(40, 3),
        batch=settings.pick(300, 20),
        clock=time.thread_time,
    )
    us = {name: value * 1e6 for name, value in medians(samples).items()}
    sdk_us = us[SDK]
    notes = [
        "CPU time of the decoding thread (time.thread_time), medians of 40 interleaved rounds",
        f"page of {len(content):,} bytes; pydantic models: ConfigDict(strict=True), "
        "same fields and types, tuples for the lists",
        f"SDK / orjson.loads per round (p10-p90): {spread(samples[SDK], samples[ORJSON])}",
    ]
    if pydantic is not None:
        notes.append(f"SDK / pydantic v2 strict: {sdk_us / us['pydantic v2 strict']:.2f}")
    return [
        Result(
            benchmark="2. decode a 100-track page",
            variants={name: value for name, value in us.items() if name != FALLBACK},
            unit="µs/page",
            ratio_label="SDK / orjson.loads (untyped)",
            ratio=sdk_us / us[ORJSON],
            target="<= 1.2",
            notes=notes,
        ),
        Result(
            benchmark="2b. decode vs the floor",
            variants={"SDK": sdk_us, "msgspec Structs": us["msgspec Structs"]},
            unit="µs/page",
            ratio_label="SDK / msgspec Structs (reported, no target)",
            ratio=sdk_us / us["msgspec Structs"],
            target="",
            notes=[
                "the same msgspec parse into the SDK's slotted attrs classes instead of "
                "msgspec's own Structs: the gap is building the attrs instances"
            ],
        ),
        Result(
            benchmark="2c. decode a page that writes an integer as 20.0",
            variants={"SDK (fallback)": us[FALLBACK], ORJSON: us[ORJSON]},
            unit="µs/page",
            ratio_label="SDK fallback / orjson.loads (reported, no target)",
            ratio=us[FALLBACK] / us[ORJSON],
            target="",
            notes=["msgspec refuses 20.0 for an int; the page is read again untyped"],
        ),
    ]
