"""(2) Decode: the JSON bytes of a 100-track page to typed objects.

- SDK: `audioscape_async._decode.decode_search_response` (orjson, then generated
  structure functions into slotted attrs classes).
- pydantic v2: `SearchResponse.model_validate_json` on models with the same
  fields and types, ``ConfigDict(strict=True)`` (extra keys ignored, the
  default). Strict mode checks types the way the SDK does: a JSON ``true`` or
  ``"120"`` is not a number, 120 is not a string, an int is accepted for a
  float. One difference, in pydantic's favour: strict pydantic rejects ``20.0``
  for an int field, which the SDK accepts.
- msgspec (the floor): `msgspec.json.Decoder` of `msgspec.Struct` classes with
  the same fields (its default, strict, type checks).
- orjson.loads alone, untyped, for scale.
"""

from __future__ import annotations

from typing import Any

import orjson

from audioscape_async._decode import decode_search_response

from ._common import Result, Settings, interleave_sync, medians, optional
from ._server import _Pages

NAME = "decode"


def page_bytes() -> bytes:
    """The 100-track page every decode variant reads (the benchmark server's fixed answer)."""
    return _Pages(10_000).answer(b'{"limit": 100}').split(b"\r\n\r\n", 1)[1]


def run(settings: Settings) -> list[Result]:
    content = page_bytes()
    variants: dict[str, Any] = {
        "SDK decode_search_response": lambda: decode_search_response(content, "req"),
    }
    pydantic = optional("pydantic")
    if pydantic is not None:
        from ._pydantic_models import SearchResponse as PydanticResponse

        validate = PydanticResponse.model_validate_json
        variants["pydantic v2 strict"] = lambda: validate(content)
    msgspec = optional("msgspec")
    if msgspec is not None:
        from ._msgspec_models import SearchResponse as MsgspecResponse

        decode = msgspec.json.Decoder(MsgspecResponse).decode
        variants["msgspec"] = lambda: decode(content)
    variants["orjson.loads (untyped)"] = lambda: orjson.loads(content)
    # Every variant must read the page the same: same tracks, same numbers.
    sdk = decode_search_response(content)
    for name, call in variants.items():
        value = call()
        if name.startswith(("pydantic", "msgspec")):
            assert len(value.tracks) == len(sdk.tracks) == 100
            assert value.tracks[-1].asset_id == sdk.tracks[-1].asset_id
            assert value.tracks[-1].bpm == sdk.tracks[-1].bpm
        call()
    samples = interleave_sync(variants, rounds=settings.pick(40, 3), batch=settings.pick(300, 20))
    us = {name: value * 1e6 for name, value in medians(samples).items()}
    sdk_us = us["SDK decode_search_response"]
    results = [
        Result(
            benchmark="2. decode a 100-track page",
            variants=us,
            unit="µs/page",
            ratio_label="SDK / pydantic v2 strict",
            ratio=sdk_us / us["pydantic v2 strict"] if pydantic is not None else None,
            target="<= 1.0",
            notes=[
                f"page of {len(content):,} bytes; pydantic models: ConfigDict(strict=True), "
                "same fields and types, tuples for the lists",
            ],
        )
    ]
    if msgspec is not None:
        results.append(
            Result(
                benchmark="2b. decode vs the floor",
                variants={"SDK": sdk_us, "msgspec": us["msgspec"]},
                unit="µs/page",
                ratio_label="SDK / msgspec (reported, no target)",
                ratio=sdk_us / us["msgspec"],
                target="",
            )
        )
    return results
