"""Injectable faults: what can go wrong between an SDK and the API.

What the API documents is the default: a 429 is `{"message": "Too Many
Requests"}` with no `Retry-After` unless a fault configuration asks for one.

A request gets at most one *answer fault* (it replaces or damages the answer;
their rates add up to at most 1) and, independently, any of the *modifiers*
("latency" delays the answer, "semantic-outage" makes this request fall back to
keyword ranking). Draws come from a seeded RNG, three per request whatever
the rates, so the same seed and the same requests give the same faults.

Network faults ("drop", "drop-mid-body", "hang") need a real socket: under
`EmulatorServer`, `EmulatorProcess` or `audioscape serve` they really close
or stall the connection. In-process (httpx.ASGITransport) there is no socket,
so the app raises the httpx error the client would have seen instead
(`httpx.RemoteProtocolError`, `httpx.ReadTimeout`), which ASGITransport passes
straight to the caller.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from audioscape_async import _json

from . import _defaults as d

#: Faults that replace or damage the answer; a request gets at most one.
ANSWER_FAULTS: Final = (
    "500",
    "502",
    "503",
    "429",
    "429-date",
    "429-no-header",
    "drop",
    "drop-mid-body",
    "truncated",
    "non-json",
    "wrong-shape",
    "hang",
)
#: Faults that change how a request is served, drawn independently of the others.
MODIFIER_FAULTS: Final = ("latency", "semantic-outage")
#: Every fault name, as `Faults`, `--fault` and the `x-emulator-fault` header spell them.
FAULT_NAMES: Final = ANSWER_FAULTS + MODIFIER_FAULTS
#: Faults that happen after the real answer is computed (they damage it in transit).
DAMAGING_FAULTS: Final = frozenset({"truncated", "drop-mid-body"})


def _checked_rates(rates: Mapping[str, float] | None) -> Mapping[str, float]:
    clean: dict[str, float] = {}
    for name, rate in (rates or {}).items():
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULT_NAMES)})")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise ValueError(f"fault {name!r}: rate must be a number from 0 to 1, got {rate!r}")
        if not 0 <= rate <= 1:
            raise ValueError(f"fault {name!r}: rate must be from 0 to 1, got {rate}")
        if rate:
            clean[name] = float(rate)
    answer_total = sum(clean.get(name, 0.0) for name in ANSWER_FAULTS)
    if answer_total > 1 + 1e-9:
        raise ValueError(
            f"the rates of {', '.join(ANSWER_FAULTS)} add up to {answer_total:g}; "
            "at most one of them hits a request, so they must add up to 1 or less"
        )
    return MappingProxyType(clean)


def _retry_after_seconds(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be whole seconds >= 0 or None, got {value!r}")


def _retry_after_format(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in d.RETRY_AFTER_FORMATS:
        raise ValueError(
            f"{attribute.name} must be one of {', '.join(d.RETRY_AFTER_FORMATS)}, got {value!r}"
        )


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen(eq=True, hash=False)
class Faults:
    """How often each fault hits a request, and how the timed ones behave.

        >>> Faults({"500": 0.1, "latency": 0.5}, latency=0.2).rates["500"]
        0.1

    `rates` maps fault names (`FAULT_NAMES`) to probabilities in 0..1; the
    answer faults' rates must add up to at most 1. `latency` is the delay
    in seconds the "latency" fault adds.

    The "429" fault answers the documented 429, `{"message": "Too Many
    Requests"}` with no `Retry-After`, unless `retry_after` (whole seconds)
    is set: then it carries `Retry-After`, written as delta-seconds or, with
    `retry_after_format="date"`, as an HTTP date that many seconds ahead.
    "429-date" always writes a date (`retry_after` seconds ahead, 0 if unset)
    and "429-no-header" never sends one.
    """

    rates: Mapping[str, float] = attrs.field(factory=dict, converter=_checked_rates)
    latency: float = attrs.field(default=d.DEFAULT_FAULT_LATENCY, validator=_non_negative)
    retry_after: int | None = attrs.field(
        default=d.DEFAULT_RETRY_AFTER, validator=_retry_after_seconds
    )
    retry_after_format: str = attrs.field(default="seconds", validator=_retry_after_format)

    @classmethod
    def coerce(cls, value: Faults | Mapping[str, float] | None) -> Faults:
        """A `Faults` from a `Faults`, a plain rate mapping, or None (no faults)."""
        if isinstance(value, Faults):
            return value
        return cls(value or {})

    @classmethod
    def from_json(cls, data: object) -> Faults:
        """A `Faults` from the admin endpoint's body.

        {"rates": {...}, "latency": s, "retry_after": s or null, "retry_after_format": f}
        """
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        fields = {"rates", "latency", "retry_after", "retry_after_format"}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        rates = data.get("rates") or {}
        if not isinstance(rates, dict):
            raise ValueError("rates must be an object of fault name to rate")
        return cls(
            rates,
            latency=data.get("latency", d.DEFAULT_FAULT_LATENCY),
            retry_after=data.get("retry_after", d.DEFAULT_RETRY_AFTER),
            retry_after_format=data.get("retry_after_format", "seconds"),
        )

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's view of this configuration."""
        return {
            "rates": dict(self.rates),
            "latency": self.latency,
            "retry_after": self.retry_after,
            "retry_after_format": self.retry_after_format,
        }

    def draw(self, rng: random.Random) -> tuple[str, ...]:
        """The faults for one request: always three draws, so runs stay reproducible."""
        answer, delay, outage = rng.random(), rng.random(), rng.random()
        chosen: list[str] = []
        if delay < self.rates.get("latency", 0.0):
            chosen.append("latency")
        bound = 0.0
        for name in ANSWER_FAULTS:
            bound += self.rates.get(name, 0.0)
            if answer < bound:
                chosen.append(name)
                break
        if outage < self.rates.get("semantic-outage", 0.0):
            chosen.append("semantic-outage")
        return tuple(chosen)


def parse_fault_list(value: str) -> tuple[str, ...]:
    """Fault names from the `x-emulator-fault` header: "drop", "latency,500" or "none"."""
    names = tuple(part.strip().lower() for part in value.split(",") if part.strip())
    if names == (d.NO_FAULT,):
        return ()
    unknown = [name for name in names if name not in FAULT_NAMES]
    if unknown or not names:
        raise ValueError(
            f"Unknown emulator fault {', '.join(unknown) or repr(value)} in {d.FAULT_HEADER} "
            f"(known: {', '.join(FAULT_NAMES)}, or {d.NO_FAULT})"
        )
    if sum(name in ANSWER_FAULTS for name in names) > 1:
        raise ValueError(f"{d.FAULT_HEADER} can force at most one of {', '.join(ANSWER_FAULTS)}")
    return names


def answer_fault(faults: tuple[str, ...]) -> str | None:
    """The answer fault among a request's faults, if any."""
    return next((name for name in faults if name in ANSWER_FAULTS), None)


#: What proxies and gateways put in front of an API answer when they fail.
HTML_BODIES: Final[Mapping[str, bytes]] = {
    "502": (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        b"</body>\r\n</html>\r\n"
    ),
    "503": (
        b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
        b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
        b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ),
    # A captive portal or a CDN error page served with 200.
    "non-json": (
        b"<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head>\n"
        b"<body><h1>Checking your browser before accessing api.audioscape.ai</h1>\n"
        b"<p>This process is automatic.</p></body></html>\n"
    ),
}
#: Valid JSON that is not a search answer: an old API version, or another service.
WRONG_SHAPE_BODY: Final = _json.dumps(
    {"status": "ok", "results": [{"id": 1, "title": "Untitled"}], "count": 1, "page": 1}
)
