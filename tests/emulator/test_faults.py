"""Faults and rate limits, over a real uvicorn socket unless a test says otherwise."""

from __future__ import annotations

import contextlib
import email.utils
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from audioscape_async.emulator import (
    BASE_PATH,
    DEMO_API_KEY,
    FAULT_HEADER,
    FAULT_NAMES,
    EmulatorServer,
    Faults,
    KeyRateLimit,
    create_app,
)
from tests.emulator.support import search


def test_fault_header_is_the_documented_name() -> None:
    """Tests force a fault with the x-emulator-fault request header."""
    assert FAULT_HEADER == "x-emulator-fault"


def test_drop_closes_the_connection_without_an_answer(http: httpx.Client) -> None:
    """ "drop" makes the client see a connection error, not an HTTP status."""
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        search(http, x_emulator_fault="drop")


def test_drop_mid_body_sends_headers_then_closes(live: EmulatorServer) -> None:
    """ "drop-mid-body" sends status and headers, then part of the body, then closes."""
    with (
        httpx.Client(headers={"x-api-key": live.api_key}) as client,
        client.stream(
            "POST",
            live.url + "/search",
            json={"query": "jazz"},
            headers={FAULT_HEADER: "drop-mid-body"},
        ) as response,
    ):
        assert response.status_code == 200
        assert "x-request-id" in response.headers
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            response.read()


def test_hang_never_answers(http: httpx.Client) -> None:
    """ "hang" sends nothing until the client gives up with a read timeout."""
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.post("/search", json={"query": "jazz"}, headers={FAULT_HEADER: "hang"}, timeout=0.3)
    assert time.monotonic() - started >= 0.3


def test_server_stops_promptly_while_a_request_hangs() -> None:
    """Stopping a server with a hanging request closes that connection instead of waiting."""
    with EmulatorServer(tracks=20) as server:
        client = httpx.Client(timeout=30)
        try:
            errors: list[BaseException] = []

            def hang() -> None:
                try:
                    client.post(
                        server.url + "/search",
                        json={"query": "x"},
                        headers={"x-api-key": server.api_key, FAULT_HEADER: "hang"},
                    )
                except httpx.HTTPError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=hang)
            thread.start()
            while not server.emulator.in_flight:
                time.sleep(0.01)
            started = time.monotonic()
            server.stop()
            thread.join(5)
            assert time.monotonic() - started < 3
            assert len(errors) == 1
            assert isinstance(errors[0], httpx.RemoteProtocolError)
        finally:
            client.close()


def test_truncated_is_a_200_with_cut_json(http: httpx.Client) -> None:
    """ "truncated" answers 200 whose body stops midway, with a content-length that matches it."""
    response = search(http, x_emulator_fault="truncated")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    whole = search(http)
    assert whole.content.startswith(response.content)


def test_non_json_is_a_200_html_page(http: httpx.Client) -> None:
    """ "non-json" answers 200 with an HTML page."""
    response = search(http, x_emulator_fault="non-json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lstrip().lower().startswith("<!doctype html")


def test_wrong_shape_is_valid_json_of_another_shape(http: httpx.Client) -> None:
    """ "wrong-shape" answers 200 with JSON that has none of tracks, artists, albums, meta."""
    response = search(http, x_emulator_fault="wrong-shape")
    assert response.status_code == 200
    assert not {"tracks", "artists", "albums", "meta"} & set(response.json())


def test_500_is_the_documented_error(http: httpx.Client) -> None:
    """ "500" answers {"error": "Internal server error"}."""
    response = search(http, x_emulator_fault="500")
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error"}


@pytest.mark.parametrize("status", ["502", "503"])
def test_gateway_errors_are_html_pages(http: httpx.Client, status: str) -> None:
    """ "502" and "503" answer like a proxy: an HTML page, not JSON."""
    response = search(http, x_emulator_fault=status)
    assert response.status_code == int(status)
    assert response.headers["content-type"].startswith("text/html")
    assert status in response.text


def test_429_by_default_is_the_documented_answer(http: httpx.Client) -> None:
    """Unless asked, "429" is exactly the documented 429: the body and no Retry-After."""
    response = search(http, x_emulator_fault="429")
    assert response.status_code == 429
    assert response.json() == {"message": "Too Many Requests"}
    assert "retry-after" not in response.headers


def test_429_retry_after_can_be_an_http_date(live: EmulatorServer, http: httpx.Client) -> None:
    """retry_after_format="date" writes the "429" fault's Retry-After as an HTTP date."""
    live.emulator.set_faults(Faults(retry_after=120, retry_after_format="date"))
    response = search(http, x_emulator_fault="429")
    when = email.utils.parsedate_to_datetime(response.headers["retry-after"])
    assert 118 <= when.timestamp() - time.time() <= 121


def test_429_storm_has_retry_after_seconds(live: EmulatorServer, http: httpx.Client) -> None:
    """ "429" answers the documented body with the configured Retry-After in seconds."""
    live.emulator.set_faults(Faults(retry_after=3))
    response = search(http, x_emulator_fault="429")
    assert response.status_code == 429
    assert response.json() == {"message": "Too Many Requests"}
    assert response.headers["retry-after"] == "3"


def test_429_date_has_an_http_date(live: EmulatorServer, http: httpx.Client) -> None:
    """ "429-date" gives Retry-After as an HTTP-date a second or so ahead."""
    live.emulator.set_faults(Faults(retry_after=1))
    response = search(http, x_emulator_fault="429-date")
    assert response.status_code == 429
    when = email.utils.parsedate_to_datetime(response.headers["retry-after"])
    assert 0 <= when.timestamp() - time.time() <= 2


def test_429_no_header_has_no_retry_after(http: httpx.Client) -> None:
    """ "429-no-header" is a 429 without Retry-After."""
    response = search(http, x_emulator_fault="429-no-header")
    assert response.status_code == 429
    assert "retry-after" not in response.headers


def test_latency_delays_a_normal_answer(live: EmulatorServer, http: httpx.Client) -> None:
    """ "latency" waits the configured seconds, then answers normally."""
    live.emulator.set_faults(Faults(latency=0.25))
    started = time.monotonic()
    response = search(http, x_emulator_fault="latency")
    assert time.monotonic() - started >= 0.25
    assert response.status_code == 200


def test_semantic_outage_falls_back_to_text(http: httpx.Client) -> None:
    """ "semantic-outage" answers by keyword, and says so in search_method."""
    outage = search(http, x_emulator_fault="semantic-outage").json()
    assert outage["meta"]["search_method"] == "text"
    assert search(http).json()["meta"]["search_method"] == "semantic"


def test_header_combines_a_modifier_and_an_answer_fault(
    live: EmulatorServer, http: httpx.Client
) -> None:
    """The header takes a comma list: a modifier and one answer fault."""
    live.emulator.set_faults(Faults(latency=0.01))
    response = search(http, x_emulator_fault="latency, 503")
    assert response.status_code == 503


@pytest.mark.parametrize("value", ["bogus", "500,503", ","])
def test_bad_fault_header_is_a_400(http: httpx.Client, value: str) -> None:
    """An unknown fault name, or two answer faults, is refused with 400 naming the header."""
    response = search(http, x_emulator_fault=value)
    assert response.status_code == 400
    assert FAULT_HEADER in response.json()["error"]


def test_none_header_overrides_the_fault_rates(live: EmulatorServer, http: httpx.Client) -> None:
    """x-emulator-fault: none gives a clean answer even when every request should fail."""
    live.emulator.set_faults({"500": 1.0})
    assert search(http).status_code == 500
    assert search(http, x_emulator_fault="none").status_code == 200


def test_forced_faults_hit_the_next_requests(live: EmulatorServer, http: httpx.Client) -> None:
    """force_fault(name, count) faults exactly the next count searches."""
    live.emulator.force_fault("503", count=2)
    assert [search(http).status_code for _ in range(3)] == [503, 503, 200]
    assert [r.faults for r in live.emulator.requests] == [("503",), ("503",), ()]


def test_fault_draws_are_reproducible(live: EmulatorServer, http: httpx.Client) -> None:
    """With one seed, the same requests meet the same faults, run after run."""
    live.emulator.set_faults({"500": 0.3, "503": 0.2, "semantic-outage": 0.3})

    def run() -> list[tuple[int, str]]:
        return [
            (r.status_code, r.json()["meta"]["search_method"] if r.status_code == 200 else "")
            for r in (search(http) for _ in range(30))
        ]

    first = run()
    assert {s for s, _ in first} == {200, 500, 503}
    live.emulator.reset()
    live.emulator.set_faults({"500": 0.3, "503": 0.2, "semantic-outage": 0.3})
    assert run() == first


def test_forcing_one_request_leaves_the_other_draws_alone(live: EmulatorServer) -> None:
    """A forced fault consumes its draw, so the faults of later requests don't shift."""
    emulator = live.emulator
    emulator.set_faults({"500": 0.5})
    plain = [emulator.begin(None).faults for _ in range(20)]
    emulator.reset()
    emulator.set_faults({"500": 0.5})
    forced = [emulator.begin(("drop",) if n == 3 else None).faults for n in range(20)]
    assert forced[:3] + forced[4:] == plain[:3] + plain[4:]


@pytest.mark.parametrize(
    "rates",
    [{"nope": 0.1}, {"500": 1.5}, {"500": -0.1}, {"500": 0.6, "drop": 0.5}, {"500": "x"}],
)
def test_bad_fault_rates_are_refused(rates: dict[str, object]) -> None:
    """Unknown names, rates outside 0..1 and answer rates adding past 1 raise ValueError."""
    with pytest.raises(ValueError, match=r"fault|rate"):
        Faults(rates)  # type: ignore[arg-type]


def test_modifier_rates_do_not_count_toward_the_limit() -> None:
    """latency and semantic-outage are drawn apart, so they may be 1 next to other faults."""
    faults = Faults({"latency": 1.0, "semantic-outage": 1.0, "500": 1.0})
    assert set(faults.rates) == {"latency", "semantic-outage", "500"}


def test_every_fault_name_is_handled(live: EmulatorServer) -> None:
    """Each fault name, forced once over a socket, is recorded in the request log."""
    live.emulator.set_faults(Faults(latency=0.01))
    with httpx.Client(timeout=0.3) as client:
        for name in FAULT_NAMES:
            live.emulator.force_fault(name)
            with contextlib.suppress(httpx.TransportError):
                client.post(
                    live.url + "/search", json={"query": "x"}, headers={"x-api-key": live.api_key}
                )
    deadline = time.monotonic() + 5
    while live.emulator.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    # A hung request is logged when its client gives up, so compare regardless of order.
    assert sorted(r.faults for r in live.emulator.requests) == sorted(
        (name,) for name in FAULT_NAMES
    )


# --------------------------------------------------------------------------- rate limit


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited() -> Iterator[tuple[EmulatorServer, FakeClock]]:
    """A server allowing 0.5 request/s with bursts of 2, on a hand-moved clock, two keys."""
    clock = FakeClock()
    limit = KeyRateLimit(0.5, burst=2, retry_after="seconds")
    app = create_app(tracks=50, api_keys=("key-a", "key-b"), rate_limit=limit, clock=clock)
    with EmulatorServer(app) as server:
        yield server, clock


@pytest.mark.parametrize("form", [None, "date"])
def test_rate_limit_retry_after_is_an_option(form: str | None) -> None:
    """A tier's 429 has no Retry-After by default; retry_after="date" gives an HTTP date."""
    clock = FakeClock()
    limit = KeyRateLimit(0.5, burst=1, retry_after=form)
    app = create_app(tracks=50, rate_limit=limit, clock=clock)
    with EmulatorServer(app) as server, httpx.Client(base_url=server.url) as client:
        assert search(client, x_api_key=server.api_key).status_code == 200
        refused = search(client, x_api_key=server.api_key)
    assert refused.status_code == 429
    assert refused.json() == {"message": "Too Many Requests"}
    if form is None:
        assert "retry-after" not in refused.headers
    else:
        when = email.utils.parsedate_to_datetime(refused.headers["retry-after"])
        assert 0 <= when.timestamp() - time.time() <= 3


def test_rate_limit_answers_429_after_the_burst(
    limited: tuple[EmulatorServer, FakeClock],
) -> None:
    """Past the burst a key gets 429 with Retry-After; the other key is unaffected."""
    server, clock = limited
    with httpx.Client(base_url=server.url) as client:
        statuses = [search(client, x_api_key="key-a").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = search(client, x_api_key="key-a")
        assert refused.json() == {"message": "Too Many Requests"}
        assert refused.headers["retry-after"] == "2"
        assert search(client, x_api_key="key-b").status_code == 200
        clock.now += 1.0
        assert search(client, x_api_key="key-a").headers["retry-after"] == "1"
        clock.now += 2.0
        assert search(client, x_api_key="key-a").status_code == 200


def test_rate_limit_can_be_changed_and_lifted(
    limited: tuple[EmulatorServer, FakeClock],
) -> None:
    """set_rate_limit replaces the limit with full buckets; None lifts it."""
    server, _ = limited
    with httpx.Client(base_url=server.url) as client:
        server.emulator.set_rate_limit(KeyRateLimit(1, burst=1))
        assert [search(client, x_api_key="key-a").status_code for _ in range(2)] == [200, 429]
        server.emulator.set_rate_limit(None)
        assert all(search(client, x_api_key="key-a").status_code == 200 for _ in range(5))


def test_rate_limit_specs_parse_and_validate() -> None:
    """KeyRateLimit.parse reads "R" and "R/BURST"; nonsense and non-positive values raise."""
    assert KeyRateLimit.parse("10") == KeyRateLimit(10, 10)
    assert KeyRateLimit.parse("0.5/3") == KeyRateLimit(0.5, 3)
    assert KeyRateLimit(0.2).burst == 1
    for bad in ("x", "0", "-1/2", "1/0", "1/x", "1/1.5"):
        with pytest.raises(ValueError, match=r"RATE|rate|burst"):
            KeyRateLimit.parse(bad)


# --------------------------------------------------------------------------- in-process


@pytest.mark.anyio
async def test_in_process_app_serves_searches() -> None:
    """Through httpx.ASGITransport the app answers like over a socket, on any event loop."""
    app = create_app(tracks=200)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://emulator" + BASE_PATH,
        headers={"x-api-key": DEMO_API_KEY},
    ) as client:
        response = await client.post("/search", json={"query": "chill lo-fi beats", "limit": 3})
        assert response.status_code == 200
        assert len(response.json()["tracks"]) == 3
        failed = await client.post("/search", json={"query": "x"}, headers={FAULT_HEADER: "503"})
        assert failed.status_code == 503


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("drop", httpx.RemoteProtocolError),
        ("drop-mid-body", httpx.RemoteProtocolError),
        ("hang", httpx.ReadTimeout),
    ],
)
async def test_in_process_network_faults_raise_what_httpx_would(
    fault: str, error: type[Exception]
) -> None:
    """Without a socket, network faults raise the httpx error a client would have seen."""
    app = create_app(tracks=50)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://emulator" + BASE_PATH,
        headers={"x-api-key": DEMO_API_KEY},
    ) as client:
        with pytest.raises(error, match="emulated"):
            await client.post("/search", json={"query": "x"}, headers={FAULT_HEADER: fault})
    assert app.state.emulator.requests[0].faults == (fault,)
