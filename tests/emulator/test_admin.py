"""The /_emulator/ admin endpoints that steer an emulator in another process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from audioscape_async.emulator import ADMIN_PREFIX, EmulatorServer, create_app
from tests.emulator.support import search


@pytest.fixture
def admin(live: EmulatorServer) -> Iterator[httpx.Client]:
    """A client for the live server's admin endpoints."""
    with httpx.Client(
        base_url=live.root_url + ADMIN_PREFIX, headers=live.admin_headers, timeout=5.0
    ) as client:
        yield client


def test_requests_summarises_the_log(admin: httpx.Client, http: httpx.Client) -> None:
    """GET /requests counts by status and fault and lists records without the key."""
    search(http)
    search(http, x_emulator_fault="503")
    search(http, {"limit": 3})
    summary = admin.get("/requests").json()
    assert summary["count"] == 3
    assert summary["by_status"] == {"200": 1, "400": 1, "503": 1}
    assert summary["by_fault"] == {"503": 1}
    first = summary["requests"][0]
    assert set(first) == {
        "time", "request_id", "key_id", "status", "faults", "offset", "limit", "query",
        "search_method", "filters", "headers", "client_disconnected", "traceparent",
    }  # fmt: skip
    assert first["query"] == "chill lo-fi beats"
    assert first["search_method"] == "semantic"
    assert first["key_id"].startswith("key_")
    assert http.headers["x-api-key"] not in str(summary)
    assert len(admin.get("/requests", params={"last": 1}).json()["requests"]) == 1


def test_faults_endpoint_sets_the_rates(admin: httpx.Client, http: httpx.Client) -> None:
    """POST /faults replaces the fault configuration of the running emulator."""
    answer = admin.post("/faults", json={"rates": {"502": 1.0}, "retry_after": 4})
    assert answer.json() == {
        "rates": {"502": 1.0}, "latency": 1.0, "retry_after": 4, "retry_after_format": "seconds"
    }  # fmt: skip
    assert search(http).status_code == 502
    admin.post("/faults", json={"rates": {}})
    assert search(http).status_code == 200


def test_force_endpoint_faults_the_next_requests(admin: httpx.Client, http: httpx.Client) -> None:
    """POST /force gives the next count searches the named fault."""
    assert admin.post("/force", json={"fault": "500", "count": 2}).json() == {
        "forced": ["500", "500"]
    }
    assert [search(http).status_code for _ in range(3)] == [500, 500, 200]


def test_rate_limit_endpoint_sets_and_lifts_the_limit(
    admin: httpx.Client, http: httpx.Client
) -> None:
    """POST /rate-limit sets a per-key limit; rate null lifts it."""
    admin.post("/rate-limit", json={"rate": 0.01, "burst": 1})
    assert [search(http).status_code for _ in range(2)] == [200, 429]
    admin.post("/rate-limit", json={"rate": None})
    assert search(http).status_code == 200


def test_reset_endpoint_restores_the_start(admin: httpx.Client, http: httpx.Client) -> None:
    """POST /reset empties the log and drops faults and limits set since the start."""
    admin.post("/faults", json={"rates": {"500": 1.0}})
    search(http)
    assert admin.post("/reset", json={}).json() == {"reset": True}
    state = admin.get("/state").json()
    assert state["faults"]["rates"] == {}
    assert state["rate_limit"] is None
    assert admin.get("/requests").json()["count"] == 0
    assert search(http).status_code == 200


def test_state_describes_the_configuration(admin: httpx.Client) -> None:
    """GET /state shows catalog size, seed, key ids (not keys), faults and limits."""
    state = admin.get("/state").json()
    assert state["catalog"]["tracks"] == 10_000
    assert state["seed"] == 0
    assert state["semantic"] is True
    assert all(k.startswith("key_") for k in state["api_key_ids"])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/faults", {"rates": {"bogus": 0.1}}),
        ("/faults", {"rates": {"500": 2}}),
        ("/faults", {"rates": [], "extra": 1}),
        ("/faults", [1]),
        ("/force", {"fault": "bogus"}),
        ("/force", {"fault": "500", "count": 0}),
        ("/force", {}),
        ("/rate-limit", {"rate": -1}),
        ("/rate-limit", [1]),
    ],
)
def test_bad_admin_bodies_are_400(admin: httpx.Client, path: str, body: object) -> None:
    """Invalid admin requests are refused with a JSON error and change nothing."""
    response = admin.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert response.headers["x-request-id"]


def test_admin_body_must_be_json(admin: httpx.Client) -> None:
    """A non-JSON admin body is a 400."""
    response = admin.post("/faults", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400


_ADMIN_CALLS = [
    ("GET", "/requests"),
    ("GET", "/state"),
    ("POST", "/faults"),
    ("POST", "/force"),
    ("POST", "/rate-limit"),
    ("POST", "/reset"),
]


@pytest.mark.parametrize(("method", "path"), _ADMIN_CALLS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc"])
def test_admin_endpoints_want_the_admin_token(
    live: EmulatorServer, method: str, path: str, authorization: str | None
) -> None:
    """Without the right `Authorization: Bearer <token>` every admin endpoint is a 401."""
    headers = {"authorization": authorization} if authorization else {}
    response = httpx.request(
        method,
        live.root_url + ADMIN_PREFIX + path,
        json={"rates": {"500": 1.0}} if method == "POST" else None,
        headers=headers,
    )
    assert response.status_code == 401
    assert "admin token" in response.json()["error"]
    assert live.emulator.faults.rates == {}


def test_admin_token_is_random_per_emulator() -> None:
    """Two emulators get different, unguessable admin tokens unless one is given."""
    first, second = create_app(tracks=10), create_app(tracks=10)
    tokens = {first.state.emulator.admin_token, second.state.emulator.admin_token}
    assert len(tokens) == 2
    assert all(len(token) >= 24 for token in tokens)
    assert create_app(tracks=10, admin_token="mine").state.emulator.admin_token == "mine"


def test_admin_token_is_not_shown(admin: httpx.Client, live: EmulatorServer) -> None:
    """Neither the state, the log nor the server's repr shows the admin token."""
    search_headers = {"x-api-key": live.api_key, **live.admin_headers}
    httpx.post(live.url + "/search", json={"query": "jazz"}, headers=search_headers)
    shown = admin.get("/state").text + admin.get("/requests").text + repr(live)
    assert live.admin_token not in shown


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_admin_posts_accept_only_json(
    admin: httpx.Client, live: EmulatorServer, content_type: str
) -> None:
    """A POST a web page could send cross-site without a preflight changes nothing: 415."""
    response = admin.post(
        "/faults", content=b'{"rates": {"500": 1.0}}', headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert live.emulator.faults.rates == {}


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1:1", "0.0.0.0"])
def test_admin_endpoints_check_the_host(
    admin: httpx.Client, live: EmulatorServer, host: str
) -> None:
    """A Host other than the bound address (as a DNS-rebinding page sends) is refused."""
    response = admin.post("/faults", json={"rates": {"500": 1.0}}, headers={"host": host})
    assert response.status_code == 421
    assert live.emulator.faults.rates == {}


def test_admin_accepts_localhost_for_a_loopback_bind(live: EmulatorServer) -> None:
    """On a loopback bind, Host localhost:PORT names the same server and is accepted."""
    response = httpx.get(
        f"http://localhost:{live.port}{ADMIN_PREFIX}/state",
        headers={**live.admin_headers, "host": f"localhost:{live.port}"},
    )
    assert response.status_code == 200


def test_admin_bodies_are_bounded(admin: httpx.Client, live: EmulatorServer) -> None:
    """An admin body over the limit is a 413 that closes the connection, not read whole."""
    body = b'{"rates": {}, "pad": "' + b"x" * 200_000 + b'"}'
    response = admin.post("/faults", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


def test_rate_limit_endpoint_sets_the_retry_after_form(
    admin: httpx.Client, http: httpx.Client
) -> None:
    """POST /rate-limit takes retry_after ("seconds" or "date") for the tier's 429s."""
    answer = admin.post("/rate-limit", json={"rate": 0.01, "burst": 1, "retry_after": "seconds"})
    assert answer.json()["rate_limit"]["retry_after"] == "seconds"
    search(http)
    assert int(search(http).headers["retry-after"]) >= 1


def test_log_shows_what_the_app_sent(admin: httpx.Client, http: httpx.Client) -> None:
    """Each record holds the query, the filters as sent and the headers, but not the key."""
    search(
        http,
        {"query": "boss fight", "filters": {"genres": ["rock"], "min_likes": 5}},
        user_agent="my-game/1.0",
    )
    record = admin.get("/requests").json()["requests"][0]
    assert record["query"] == "boss fight"
    assert record["filters"] == {"genres": ["rock"], "min_likes": 5}
    assert record["headers"]["user-agent"] == "my-game/1.0"
    assert "x-api-key" not in record["headers"]
    assert http.headers["x-api-key"] not in str(record)
