"""Building blocks for the core's tests: fake API answers over `httpx.MockTransport`.

Nothing here touches the network. `MockAPI` is the transport's handler: it
records every request it sees and answers from a script (a list of responses)
or from a function of the decoded request body. `catalog` serves offset/limit
pages out of a list of asset ids, the way the real API pages.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import audioscape_async
from audioscape_async import AsyncClient, SearchResponse
from audioscape_async import _retry as retry_module

#: A key distinctive enough that finding it anywhere is proof of a leak.
API_KEY = "sk-live-7c1d3e5f9a0b2468-TOP-SECRET"

_PACKAGE_DIR = str(Path(audioscape_async.__file__).parent)

Answer = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


def track_json(asset_id: str = "1837070127", **fields: Any) -> dict[str, Any]:
    """One track as the API documents it; `fields` override or add keys."""
    track: dict[str, Any] = {
        "asset_id": asset_id,
        "name": f"Track {asset_id}",
        "artist": "Some Artist",
        "album": "Some Album",
        "duration": 123.5,
        "genre": "electronic",
        "bpm": 120,
        "score": 0.87,
    }
    track.update(fields)
    return track


def page_json(
    asset_ids: Iterable[str] = ("1837070127",),
    *,
    total: int | None = None,
    offset: int = 0,
    limit: int = 20,
    **meta: Any,
) -> dict[str, Any]:
    """One documented search answer holding tracks with these ids."""
    tracks = [track_json(asset_id) for asset_id in asset_ids]
    body: dict[str, Any] = {
        "tracks": tracks,
        "artists": [{"name": "Some Artist", "track_count": len(tracks)}],
        "albums": [{"name": "Some Album", "artist": "Some Artist", "track_count": len(tracks)}],
        "meta": {
            "total": len(tracks) if total is None else total,
            "limit": limit,
            "offset": offset,
            "search_method": "semantic",
            "matched_artist": None,
        },
    }
    body["meta"].update(meta)
    return body


def ok(body: Mapping[str, Any] | None = None, /, **headers: str) -> httpx.Response:
    """A 200 answer with a JSON body (a one-track page by default)."""
    return httpx.Response(200, json=page_json() if body is None else body, headers=headers)


def error(status: int, body: object = None, /, **headers: str) -> httpx.Response:
    """An error answer; a `str` body goes out as is, anything else as JSON."""
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


class MockAPI:
    """The handler of an `httpx.MockTransport`: records requests, answers from a script.

    Each request takes the next answer of `script`; the last answer repeats.
    An answer may be a response, an exception to raise (as a transport would),
    or a function of the request. `respond`, if given, overrides the script.
    """

    def __init__(
        self,
        *script: Answer,
        respond: Callable[[httpx.Request, dict[str, Any]], httpx.Response] | None = None,
    ) -> None:
        self.script = list(script) or [ok()]
        self.respond = respond
        self.requests: list[httpx.Request] = []

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON body of every request received, in order."""
        return [orjson.loads(request.content) for request in self.requests]

    @property
    def calls(self) -> int:
        """How many requests reached the transport."""
        return len(self.requests)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.respond is not None:
            return self.respond(request, orjson.loads(request.content))
        answer = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def transport(self) -> httpx.MockTransport:
        """A mock transport that sends every request here."""
        return httpx.MockTransport(self)


def catalog(
    asset_ids: Sequence[str] | Callable[[int], Sequence[str]],
    *,
    total: int | Callable[[int], int] | None = None,
) -> Callable[[httpx.Request, dict[str, Any]], httpx.Response]:
    """Serve ``asset_ids[offset:offset + limit]`` like the API pages a result set.

    Either argument may be a function of the request number (1 for the first),
    to make the catalog change between pages.
    """
    served = 0

    def respond(_request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        nonlocal served
        served += 1
        ids = asset_ids(served) if callable(asset_ids) else asset_ids
        count = total(served) if callable(total) else total
        offset, limit = body["offset"], body["limit"]
        return ok(
            page_json(
                ids[offset : offset + limit],
                total=len(ids) if count is None else count,
                offset=offset,
                limit=limit,
            )
        )

    return respond


def ids(count: int, start: int = 0) -> list[str]:
    """`count` distinct asset ids."""
    return [str(1_000_000 + n) for n in range(start, start + count)]


@asynccontextmanager
async def open_client(api: MockAPI, **options: Any) -> AsyncIterator[AsyncClient]:
    """An open `AsyncClient` whose requests all go to `api`; both closed afterwards."""
    options.setdefault("api_key", API_KEY)
    async with (
        httpx.AsyncClient(transport=api.transport()) as http,
        AsyncClient(http_client=http, **options) as client,
    ):
        yield client


def record_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the retry sleep with a recorder; return the list of delays asked for."""
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(retry_module, "sleep", sleep)
    return delays


def suspended_sdk_generators() -> set[int]:
    """Ids of the SDK's async generators that are started or pending but not finished.

    A finished or closed async generator has no frame; one the SDK left
    suspended still holds its frame (and whatever it had open) until collected.
    """
    import gc

    return {
        id(obj)
        for obj in gc.get_objects()
        if inspect.isasyncgen(obj)
        and obj.ag_frame is not None
        and obj.ag_code.co_filename.startswith(_PACKAGE_DIR)
    }


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until `condition()` holds (work running elsewhere: nothing to wait on); fail
    after `timeout` seconds."""
    import anyio

    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


def full_repr(page: SearchResponse) -> str:
    """Every field of a page as written out, types and all (its own repr is short)."""
    return repr((page.tracks, page.artists, page.albums, page.meta))


#: `python -m MODULE ARGS` with Python's own Ctrl-C handler set: a launcher that ignores
#: SIGINT in its children (as some CI runners do) passes SIG_IGN on, and Python then keeps it,
#: so a child a test interrupts sets the handler the test relies on itself.
_WITH_CTRL_C = (
    "import runpy, signal, sys; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = sys.argv[1:]; "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


def interruptible(module: str, *args: str) -> list[str]:
    """The command line that runs `module` as ``python -m`` would, Ctrl-C raising as usual."""
    return [sys.executable, "-c", _WITH_CTRL_C, module, *args]
