"""`Client`: the blocking facade over the async core, its thread, its iterators, its close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest

from audioscape_async import (
    AudioScapeError,
    AuthenticationError,
    BadRequestError,
    Client,
    InternalServerError,
    InvalidParameterError,
    SearchResponse,
)
from tests.helpers import (
    API_KEY,
    MockAPI,
    catalog,
    error,
    ids,
    ok,
    page_json,
)

LOOP_THREAD = "audioscape-client-loop"


#: No test here waits out a retry backoff (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")


def _loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == LOOP_THREAD]


@contextmanager
def sync_client(api: MockAPI, **options: Any) -> Iterator[Client]:
    """An entered `Client` whose requests all go to `api`; closed afterwards."""
    # A MockTransport holds nothing to release, so the httpx client is left to
    # the collector (closing it would need an event loop of the caller's own).
    http = httpx.AsyncClient(transport=api.transport())
    with Client(API_KEY, http_client=http, **options) as client:
        yield client


def test_search_returns_a_page() -> None:
    """Client.search sends one request and returns the typed page."""
    api = MockAPI(ok(page_json(["5", "6"], total=2)))
    with sync_client(api) as client:
        page = client.search("chill lo-fi beats", limit=2, filters={"genres": ["lo-fi"]})
    assert isinstance(page, SearchResponse)
    assert [track.asset_id for track in page.tracks] == ["5", "6"]
    assert api.bodies == [
        {"query": "chill lo-fi beats", "limit": 2, "offset": 0, "filters": {"genres": ["lo-fi"]}}
    ]


def test_iter_pages_walks_every_page() -> None:
    """Client.iter_pages yields every page up to meta.total."""
    api = MockAPI(respond=catalog(ids(25)))
    with sync_client(api) as client:
        pages = list(client.iter_pages("calm piano", page_size=10))
    assert [len(page.tracks) for page in pages] == [10, 10, 5]
    assert api.calls == 3


def test_iter_tracks_walks_every_track_once() -> None:
    """Client.iter_tracks yields every track, each asset_id once, in order."""
    first, second = ids(10), ids(5, start=5) + ids(5, start=10)
    api = MockAPI(
        ok(page_json(first, total=20, limit=10)),
        ok(page_json(second, total=20, offset=10, limit=10)),
    )
    with sync_client(api) as client:
        tracks = [track.asset_id for track in client.iter_tracks("calm piano", page_size=10)]
    assert tracks == ids(15)


def test_iter_tracks_max_items() -> None:
    """Client.iter_tracks stops at max_items, asking only for what is left."""
    api = MockAPI(respond=catalog(ids(100)))
    with sync_client(api) as client:
        tracks = list(client.iter_tracks("calm piano", page_size=10, max_items=15))
    assert [track.asset_id for track in tracks] == ids(15)
    assert [body["limit"] for body in api.bodies] == [10, 5]


@pytest.mark.parametrize("stop_after", [1, 10, 25])
def test_breaking_early_fetches_at_most_one_page_past(stop_after: int) -> None:
    """Leaving a track loop early has fetched at most one page past the current one."""
    api = MockAPI(respond=catalog(ids(1000)))
    with sync_client(api) as client:
        for seen, _ in enumerate(client.iter_tracks("calm piano", page_size=10), start=1):
            if seen == stop_after:
                break
        current_page = (stop_after - 1) // 10 + 1
        assert api.calls <= current_page + 1
        # Once the loop is left, the walk is stopped: nothing more goes out.
        calls = api.calls
        client.search("another query")
        assert api.calls == calls + 1


def test_breaking_out_of_iter_pages_fetches_at_most_one_page_past() -> None:
    """Leaving a page loop at the first page has fetched at most two pages."""
    api = MockAPI(respond=catalog(ids(1000)))
    with sync_client(api) as client:
        for _ in client.iter_pages("calm piano", page_size=10):
            break
        assert api.calls <= 2


def test_closing_the_iterator_stops_the_walk() -> None:
    """Closing a half-read iterator stops its walk; the client stays usable."""
    api = MockAPI(respond=catalog(ids(1000)))
    with sync_client(api) as client:
        tracks = client.iter_tracks("calm piano", page_size=10)
        assert isinstance(tracks, Generator)
        next(tracks)
        tracks.close()
        calls = api.calls
        assert calls <= 2
        assert client.search("calm piano").tracks
        assert api.calls == calls + 1


def test_ctrl_c_in_the_loop_body_stops_the_walk() -> None:
    """A KeyboardInterrupt raised in the loop body stops the walk; the client stays usable."""
    baseline = threading.active_count()
    api = MockAPI(respond=catalog(ids(1000)))
    with sync_client(api) as client:

        def loop() -> None:
            for _ in client.iter_tracks("calm piano", page_size=10):
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            loop()
        calls = api.calls
        assert calls <= 2
        assert client.search("calm piano").tracks
        assert api.calls == calls + 1
    assert threading.active_count() == baseline


def test_search_error_propagates_with_its_class() -> None:
    """An error answer raises its own class out of Client.search."""
    api = MockAPI(error(401, {"error": "Invalid API key"}))
    with sync_client(api) as client, pytest.raises(AuthenticationError, match="Invalid API key"):
        client.search("calm piano")


def test_iteration_error_propagates_with_its_class() -> None:
    """An error answer on a later page raises its own class out of the sync loop."""
    api = MockAPI(ok(page_json(ids(10), total=30, limit=10)), error(400, {"error": "bad page"}))
    got: list[str] = []
    with sync_client(api) as client:

        def walk() -> None:
            for track in client.iter_tracks("calm piano", page_size=10):
                got.append(track.asset_id)

        with pytest.raises(BadRequestError, match="bad page"):
            walk()
        assert got == ids(10)
        # The failed walk left nothing behind: the client still works.
        api.script = [ok()]
        assert client.search("calm piano").tracks


def test_invalid_arguments_raise_at_the_call() -> None:
    """Invalid arguments raise InvalidParameterError from the sync methods, sending nothing."""
    api = MockAPI()
    with sync_client(api) as client:
        with pytest.raises(InvalidParameterError, match="limit"):
            client.search("q", limit=0)
        with pytest.raises(InvalidParameterError, match="page_size"):
            client.iter_pages("q", page_size=500)
        with pytest.raises(InvalidParameterError, match="max_items"):
            client.iter_tracks("q", max_items=0)
    assert api.calls == 0


def test_sync_client_retries_through_the_same_core(sleeps: list[float]) -> None:
    """The sync client retries like the async one (same policy, same sleep)."""
    api = MockAPI(error(503, {"error": "busy"}))
    with sync_client(api, max_retries=2) as client, pytest.raises(InternalServerError):
        client.search("calm piano")
    assert api.calls == 3
    assert len(sleeps) == 2


# -- the thread ------------------------------------------------------------------


def test_close_stops_the_thread() -> None:
    """close() stops the client's event-loop thread: the thread count is back to baseline."""
    baseline = threading.active_count()
    api = MockAPI()
    http = httpx.AsyncClient(transport=api.transport())
    client = Client(API_KEY, http_client=http)
    client.search("calm piano")
    assert next(iter(client.iter_pages("calm piano"))).tracks  # an iterator starts the thread
    assert len(_loop_threads()) == 1
    assert threading.active_count() == baseline + 1
    client.search("calm piano")
    client.close()
    anyio.run(http.aclose)
    assert _loop_threads() == []
    assert threading.active_count() == baseline
    assert client.is_closed


def test_leaving_with_stops_the_thread() -> None:
    """Leaving the `with` block stops the thread, even after an exception."""
    baseline = threading.active_count()
    with pytest.raises(AuthenticationError), sync_client(MockAPI(error(401))) as client:
        client.search("calm piano")
    assert threading.active_count() == baseline
    assert _loop_threads() == []


def test_close_after_breaking_early_stops_the_thread() -> None:
    """A client closed while an iterator is half read stops cleanly, thread and all."""
    baseline = threading.active_count()
    api = MockAPI(respond=catalog(ids(1000)))
    with sync_client(api) as client:
        tracks = client.iter_tracks("calm piano", page_size=10)
        assert isinstance(tracks, Generator)
        next(tracks)
    tracks.close()
    assert threading.active_count() == baseline


def test_iterator_of_a_closed_client_says_it_is_closed() -> None:
    """An iterator first read after its Client was closed raises AudioScapeError, nothing raw."""
    api = MockAPI(respond=catalog(ids(100)))
    with sync_client(api) as client:
        tracks = client.iter_tracks("calm piano", page_size=10)
    with pytest.raises(AudioScapeError, match="closed"):
        next(tracks)
    assert api.calls == 0


def test_iterator_running_dry_after_close_says_it_is_closed() -> None:
    """A half-read iterator that needs another page after close raises AudioScapeError."""
    api = MockAPI(respond=catalog(ids(100)))
    with sync_client(api) as client:
        pages = client.iter_pages("calm piano", page_size=10)
        next(pages)
    with pytest.raises(AudioScapeError, match="closed"):
        next(pages)


def test_failed_construction_leaves_no_thread() -> None:
    """A Client that cannot be built (no key) leaves no thread behind."""
    baseline = threading.active_count()
    with pytest.raises(AudioScapeError, match="AUDIOSCAPE_API_KEY"):
        Client()
    assert threading.active_count() == baseline


def test_close_is_idempotent() -> None:
    """Closing a Client twice is harmless."""
    client = Client(API_KEY)
    client.close()
    client.close()
    assert client.is_closed


def test_closed_client_refuses_calls() -> None:
    """Every call on a closed Client raises AudioScapeError and sends nothing."""
    api = MockAPI()
    with sync_client(api) as client:
        pass
    with pytest.raises(AudioScapeError, match="closed"):
        client.search("calm piano")
    with pytest.raises(AudioScapeError, match="closed"):
        client.iter_pages("calm piano")
    with pytest.raises(AudioScapeError, match="closed"):
        client.iter_tracks("calm piano")
    with pytest.raises(AudioScapeError, match="closed"), client:
        pass  # pragma: no cover
    assert api.calls == 0


def test_works_inside_a_running_asyncio_loop() -> None:
    """Client works from a thread that already runs an asyncio loop (a notebook)."""
    api = MockAPI(respond=catalog(ids(25)))

    async def notebook_cell() -> tuple[int, list[str]]:
        with sync_client(api) as client:
            total = client.search("calm piano").meta.total
            tracks = [t.asset_id for t in client.iter_tracks("calm piano", page_size=10)]
        return total, tracks

    baseline = threading.active_count()
    total, tracks = asyncio.run(notebook_cell())
    assert total == 25
    assert tracks == ids(25)
    assert threading.active_count() == baseline


def test_works_from_several_threads_at_once() -> None:
    """One Client serves calls from several threads at once."""
    api = MockAPI(respond=catalog(ids(40)))
    results: list[int] = []
    with sync_client(api) as client:

        def worker() -> None:
            results.append(len(list(client.iter_tracks("calm piano", page_size=10))))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert results == [40, 40, 40, 40]


def test_repr_names_the_sync_client() -> None:
    """repr() of a Client says Client and shows its configuration."""
    with sync_client(MockAPI(), max_retries=1) as client:
        text = repr(client)
    assert text.startswith("<Client ")
    assert "max_retries=1" in text
