"""The /_emulator/ admin endpoints that steer an emulator in another process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from audioscape_async.emulator import ADMIN_PREFIX, EmulatorServer
from tests.emulator.support import search


@pytest.fixture
def admin(live: EmulatorServer) -> Iterator[httpx.Client]:
    """A client for the live server's admin endpoints."""
    with httpx.Client(base_url=live.root_url + ADMIN_PREFIX, timeout=5.0) as client:
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
        "search_method",
    }  # fmt: skip
    assert first["query"] == "chill lo-fi beats"
    assert first["search_method"] == "semantic"
    assert first["key_id"].startswith("key_")
    assert http.headers["x-api-key"] not in str(summary)
    assert len(admin.get("/requests", params={"last": 1}).json()["requests"]) == 1


def test_faults_endpoint_sets_the_rates(admin: httpx.Client, http: httpx.Client) -> None:
    """POST /faults replaces the fault configuration of the running emulator."""
    answer = admin.post("/faults", json={"rates": {"502": 1.0}, "retry_after": 4})
    assert answer.json() == {"rates": {"502": 1.0}, "latency": 1.0, "retry_after": 4}
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
    assert admin.post("/reset").json() == {"reset": True}
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
    response = admin.post("/faults", content=b"{nope")
    assert response.status_code == 400
