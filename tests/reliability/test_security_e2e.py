"""The API key over real sockets: never shown, never sent astray, never in clear text unwarned.

Against the emulator (a key of its own, distinctive enough that finding it
anywhere is a leak) and raw loopback servers for redirects and TLS. Every
failure a call can meet is searched for the key: str, repr, args, the
formatted chain, the traceback with every frame's locals, and the log with
httpx's, httpcore's and aiohttp's loggers at DEBUG.
"""

from __future__ import annotations

import logging
import ssl
import sys
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import trustme

from audioscape_async import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    AudioScapeError,
    Client,
    InsecureURLWarning,
    RetryPolicy,
)
from audioscape_async.emulator import FAULT_HEADER, EmulatorServer, Faults
from tests.reliability import servers

SECRET = "sk-e2e-9f8e7d6c5b4a3210-NEVER-SHOW"
WRONG_SECRET = "sk-e2e-wrong-0f1e2d3c4b5a-NEVER-SHOW"
QUICK = RetryPolicy(max_retries=1, initial_backoff=0.001, max_backoff=0.002, max_retry_after=0.5)
LOGGERS = ("", "httpx", "httpcore", "aiohttp", "asyncio", "audioscape_async", "hpack", "trio")


@pytest.fixture(scope="module")
def secret_server() -> Iterator[EmulatorServer]:
    """An emulator that accepts only SECRET, over a real loopback socket."""
    with EmulatorServer(tracks=300, seed=5, api_keys=[SECRET]) as server:
        yield server


@pytest.fixture
def emulator(secret_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The secret emulator for one test, reset before and after."""
    secret_server.emulator.reset()
    secret_server.emulator.set_faults(Faults(retry_after=0))
    yield secret_server
    secret_server.emulator.reset()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record, at DEBUG, of the SDK and of the HTTP stack under it."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    return caplog


def shown(error: BaseException) -> str:
    """Everything a program or a crash reporter may show of an error, in one string."""
    parts = [
        str(error),
        repr(error),
        repr(error.args),
        "".join(traceback.format_exception(error)),
        "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format()),
    ]
    if isinstance(error, AudioScapeError):
        for name in ("body", "request_id", "message", "retry_after", "status_code"):
            parts.append(repr(getattr(error, name, None)))
        response = getattr(error, "response", None)
        if response is not None:
            parts += [repr(response), repr(response.request), response.text]
    return "\n".join(parts)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """The captured log, formatted with tracebacks, and every record's raw arguments."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(
        [formatter.format(record) for record in caplog.records]
        + [repr(record.args) for record in caplog.records]
    )


def _options(server: EmulatorServer, fault: str | None, key: str = SECRET) -> dict[str, Any]:
    options: dict[str, Any] = {
        "api_key": key,
        "base_url": server.url,
        "timeout": 0.2,
        "retry": QUICK,
    }
    if fault is not None:
        options["default_headers"] = {FAULT_HEADER: fault}
    return options


async def _fail_async(client: AsyncClient) -> BaseException:
    # No local of this frame (it is in the traceback) holds the key: only the client.
    try:
        await client.search("secret hunting", limit=2)
    except AudioScapeError as error:
        return error
    raise AssertionError("the call did not fail")


def _fail_sync(client: Client) -> BaseException:
    try:
        client.search("secret hunting", limit=2)
    except AudioScapeError as error:
        return error
    raise AssertionError("the call did not fail")


FAULTS = ["500", "503", "429", "drop", "drop-mid-body", "hang", "truncated", "wrong-shape", "401"]


@pytest.mark.anyio
@pytest.mark.parametrize("fault", FAULTS)
async def test_key_never_shown_by_a_failed_call(
    emulator: EmulatorServer, debug_logs: pytest.LogCaptureFixture, fault: str
) -> None:
    """No failure shows the key: message, repr, chain, traceback with locals, or DEBUG log."""
    options = (
        _options(emulator, None, key=WRONG_SECRET) if fault == "401" else _options(emulator, fault)
    )
    async with AsyncClient(**options) as client:
        error = await _fail_async(client)
    text = shown(error) + logged(debug_logs)
    assert SECRET not in text
    assert WRONG_SECRET not in text
    assert debug_logs.records, "the loggers were on"


@pytest.mark.parametrize("fault", FAULTS)
def test_key_never_shown_by_a_failed_sync_call(
    emulator: EmulatorServer, debug_logs: pytest.LogCaptureFixture, fault: str
) -> None:
    """The sync Client's failures, raised across its thread, show the key nowhere either."""
    options = (
        _options(emulator, None, key=WRONG_SECRET) if fault == "401" else _options(emulator, fault)
    )
    with Client(**options) as client:
        error = _fail_sync(client)
    text = shown(error) + logged(debug_logs)
    assert SECRET not in text
    assert WRONG_SECRET not in text


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["drop", "hang"])
async def test_a_traceback_without_the_key_still_shows_where_it_failed(
    emulator: EmulatorServer, fault: str
) -> None:
    """Locals are cleared, not frames: the chained traceback still walks the HTTP stack."""
    async with AsyncClient(**_options(emulator, fault)) as client:
        error = await _fail_async(client)
        stack = client._pipeline.shared.transport.chosen  # httpcore's frames, or aiohttp's
    assert isinstance(error, APIConnectionError)
    text = "".join(traceback.format_exception(error))
    assert "The above exception was the direct cause" in text
    assert ("/aiohttp/" if stack == "aiohttp" else "/httpcore/") in text


def _raise_with_a_local() -> None:
    precious = "the caller's own local"  # noqa: F841 - read back from the frame below
    raise ValueError("the caller's own error")


@pytest.mark.anyio
async def test_the_callers_own_error_keeps_its_locals(emulator: EmulatorServer) -> None:
    """A search that fails while the caller handles an error leaves that error's frames alone."""
    async with AsyncClient(**_options(emulator, "drop")) as client:
        try:
            _raise_with_a_local()
        except ValueError as caught:
            error = await _fail_async(client)
            mine = caught
    assert isinstance(error, APIConnectionError)
    assert error.__context__ is not None  # the search failed while `mine` was handled
    assert mine.__traceback__ is not None
    assert mine.__traceback__.tb_next is not None
    frame_locals = mine.__traceback__.tb_next.tb_frame.f_locals
    assert frame_locals.get("precious") == "the caller's own local"


@pytest.mark.anyio
async def test_key_never_shown_by_a_good_call(
    emulator: EmulatorServer, debug_logs: pytest.LogCaptureFixture
) -> None:
    """A successful search, its page, its client and its crawl show the key nowhere."""
    async with AsyncClient(**_options(emulator, None)) as client:
        page = await client.search("chill lo-fi beats", limit=3)
        crawl = client.crawl("chill lo-fi beats", max_items=5)
        tracks = [track async for track in crawl]
        shown_things = [client, page, page.meta, tracks, crawl, crawl.stats, client.retry_policy]
        text = "\n".join([repr(thing) for thing in shown_things] + [str(client), str(page)])
    assert page.tracks
    assert SECRET not in text + repr(client) + logged(debug_logs)


def test_key_never_shown_by_a_sync_client(emulator: EmulatorServer) -> None:
    """The sync Client and what it returns show the key nowhere, open or closed."""
    with Client(**_options(emulator, None)) as client:
        page = client.search("chill lo-fi beats", limit=3)
        text = repr(client) + str(client) + repr(page)
    assert SECRET not in text + repr(client)


# -- redirects: never followed, the target never hears from us --------------------------


@pytest.fixture
def target() -> Iterator[servers.RawServer]:
    """Where a hostile redirect points: it answers a good page to anyone who comes."""
    with servers.RawServer(servers.answer()) as server:
        yield server


def _locations(target: servers.RawServer) -> list[str]:
    return [
        f"http://127.0.0.1:{target.port}/developer/v1/search",  # another port
        f"http://localhost:{target.port}/developer/v1/search",  # another host name
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("follow_redirects", [False, True], ids=["own-pool", "user-pool-follows"])
async def test_redirect_is_not_followed_and_the_target_never_gets_the_key(
    target: servers.RawServer, status: int, follow_redirects: bool
) -> None:
    """A 3xx to another host or port: a clear APIStatusError; the target sees no connection."""
    for location in _locations(target):
        with servers.RawServer(servers.redirect(status, location)) as api:
            http = httpx.AsyncClient(follow_redirects=True) if follow_redirects else None
            try:
                async with AsyncClient(
                    SECRET, base_url=api.url(), retry=QUICK, http_client=http
                ) as client:
                    error = await _fail_async(client)
            finally:
                if http is not None:
                    await http.aclose()
            assert type(error) is APIStatusError
            assert error.status_code == status
            assert "redirect" in str(error)
            assert location in str(error)
            assert len(api.requests) == 1, "a redirect is not retried"
            assert api.requests[0].headers["x-api-key"] == SECRET  # the real API got it
    assert target.connections == 0, "the redirect target was contacted"
    assert target.requests == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_sync_redirect_is_not_followed(target: servers.RawServer, status: int) -> None:
    """The sync Client does not follow a redirect either; the target sees nothing."""
    for location in _locations(target):
        with (
            servers.RawServer(servers.redirect(status, location)) as api,
            Client(SECRET, base_url=api.url(), retry=QUICK) as client,
        ):
            error = _fail_sync(client)
        assert type(error) is APIStatusError
        assert error.status_code == status
        assert location in str(error)
    assert target.connections == 0


# -- TLS: verified by default -------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority no system trusts."""
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[servers.RawServer]:
    """An HTTPS server with a certificate from `ca` for 127.0.0.1 and localhost."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with servers.RawServer(servers.answer(), tls=context) as server:
        yield server


@pytest.mark.anyio
async def test_self_signed_certificate_is_refused_by_default(tls_server: servers.RawServer) -> None:
    """An untrusted certificate: APIConnectionError, and no request (no key) ever sent."""
    async with AsyncClient(SECRET, base_url=tls_server.url(scheme="https"), retry=QUICK) as client:
        error = await _fail_async(client)
    assert type(error) is APIConnectionError
    assert "certificate" in str(error).lower()
    assert tls_server.connections >= 1
    assert tls_server.requests == [], "a request went over an unverified connection"


def test_sync_self_signed_certificate_is_refused_by_default(tls_server: servers.RawServer) -> None:
    """The sync Client refuses the untrusted certificate too."""
    with Client(SECRET, base_url=tls_server.url(scheme="https"), retry=QUICK) as client:
        error = _fail_sync(client)
    assert type(error) is APIConnectionError
    assert tls_server.requests == []


#: Retries that would show: three of them, each after a short backoff.
RETRYING = RetryPolicy(max_retries=3, initial_backoff=0.01, max_backoff=0.02)


@pytest.mark.anyio
async def test_an_untrusted_certificate_is_not_retried(tls_server: servers.RawServer) -> None:
    """A certificate that fails verification will fail again: one connection, then the error."""
    async with AsyncClient(
        SECRET, base_url=tls_server.url(scheme="https"), retry=RETRYING
    ) as client:
        error = await _fail_async(client)
    assert type(error) is APIConnectionError
    assert not error.retryable
    assert "certificate fails verification, so no retry was made" in str(error)
    assert tls_server.connections == 1


@pytest.mark.anyio
async def test_tls_to_a_plain_http_server_is_not_retried_and_says_why() -> None:
    """https:// to a server that speaks plain HTTP: one try, and a hint to use http://."""
    with servers.RawServer(servers.not_tls, read=False) as plain:
        async with AsyncClient(
            SECRET, base_url=plain.url(scheme="https"), retry=RETRYING
        ) as client:
            error = await _fail_async(client)
        assert plain.connections == 1
    assert type(error) is APIConnectionError
    assert not error.retryable
    assert f"the server at 127.0.0.1:{plain.port} does not speak TLS" in str(error)
    assert "base_url starts with http://" in str(error)


def test_sync_tls_to_a_plain_http_server_is_not_retried() -> None:
    """The sync Client makes one try too."""
    with servers.RawServer(servers.not_tls, read=False) as plain:
        with Client(SECRET, base_url=plain.url(scheme="https"), retry=RETRYING) as client:
            error = _fail_sync(client)
        assert plain.connections == 1
    assert isinstance(error, APIConnectionError)
    assert not error.retryable


@pytest.mark.anyio
async def test_a_refused_connection_is_still_retried() -> None:
    """A connection error that a retry can cure (nothing listening) is retried as before."""
    with servers.RawServer(servers.answer()) as gone:
        url = gone.url()
    async with AsyncClient(SECRET, base_url=url, retry=RETRYING) as client:
        error = await _fail_async(client)
    assert type(error) is APIConnectionError
    assert error.retryable
    assert "(4 attempts over " in str(error)


@pytest.mark.anyio
async def test_passing_the_ca_explicitly_works(
    tls_server: servers.RawServer, ca: trustme.CA
) -> None:
    """With its CA given through `http_client=httpx.AsyncClient(verify=...)`, the search works."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with (
        httpx.AsyncClient(verify=context) as http,
        AsyncClient(SECRET, base_url=tls_server.url(scheme="https"), http_client=http) as client,
    ):
        page = await client.search("over tls", limit=1)
    assert page.tracks[0].asset_id == "1837070127"
    assert tls_server.requests[0].headers["x-api-key"] == SECRET


def test_sync_passing_the_ca_explicitly_works(
    tls_server: servers.RawServer, ca: trustme.CA
) -> None:
    """The sync Client runs on a given `httpx.AsyncClient(verify=...)` too, and closes it."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    http = httpx.AsyncClient(verify=context)
    with Client(SECRET, base_url=tls_server.url(scheme="https"), http_client=http) as client:
        page = client.search("over tls", limit=1)
    assert page.tracks[0].asset_id == "1837070127"
    assert http.is_closed


# -- plain http off this machine warns ---------------------------------------------------

OFF_MACHINE = [
    "http://api.example.com/developer/v1",
    "http://10.0.0.8:8080/developer/v1",
    "http://192.168.1.2/developer/v1",
    "http://[2001:db8::1]/developer/v1",
    "http://localhost.example.com/developer/v1",
    "http://0.0.0.0:8080/developer/v1",
]
ON_MACHINE_OR_TLS = [
    "https://api.example.com/developer/v1",
    "http://127.0.0.1:8080/developer/v1",
    "http://127.8.9.10/developer/v1",
    "http://localhost:8080/developer/v1",
    "http://api.localhost/developer/v1",
    "http://[::1]:8080/developer/v1",
]


def _held_warning(client: AsyncClient | Client) -> list[warnings.WarningMessage]:
    """The insecure-URL warning `client` holds, said now (as its first network answer would)."""
    inner = client._async if isinstance(client, Client) else client
    insecure = inner._pipeline.config.insecure
    assert insecure is not None
    with pytest.warns(InsecureURLWarning, match="unencrypted") as record:
        insecure.warn()
    return list(record)


@pytest.mark.parametrize("url", OFF_MACHINE)
def test_plain_http_off_this_machine_warns_at_the_callers_line(url: str) -> None:
    """http:// to another machine holds an InsecureURLWarning naming the caller's own line.

    Nothing is said when the client is made: only an answer over a network socket says it
    (tests/core/test_proxy.py has it said by a real one).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = AsyncClient(SECRET, base_url=url)
        sync = Client(SECRET, base_url=url)
    record = _held_warning(client) + _held_warning(sync)
    sync.close()
    assert [warning.filename for warning in record] == [__file__, __file__]
    assert all(SECRET not in str(warning.message) for warning in record)


def test_plain_http_from_the_environment_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUDIOSCAPE_BASE_URL with plain http to another machine warns as well."""
    monkeypatch.setenv("AUDIOSCAPE_BASE_URL", OFF_MACHINE[0])
    assert _held_warning(AsyncClient(SECRET))


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["http://emulator/developer/v1", OFF_MACHINE[0]])
async def test_an_in_process_transport_never_warns(url: str) -> None:
    """httpx's ASGI transport (the README's `http://emulator`) sends nothing over a network:
    no InsecureURLWarning, even with every warning an error."""
    from audioscape_async.emulator import DEMO_API_KEY, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transport = httpx.ASGITransport(app=create_app(tracks=200))
        async with (
            httpx.AsyncClient(transport=transport) as http,
            AsyncClient(DEMO_API_KEY, base_url=url, http_client=http) as client,
        ):
            for _ in range(2):
                assert (await client.search("Daft Punk", limit=3)).tracks


def test_the_sync_client_on_an_in_process_transport_never_warns() -> None:
    """The blocking Client on the ASGI transport is as quiet."""
    from audioscape_async.emulator import DEMO_API_KEY, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(tracks=200)))
        with Client(DEMO_API_KEY, base_url=OFF_MACHINE[0], http_client=http) as client:
            assert client.search("Daft Punk", limit=3).tracks


class _ToLoopback(httpx.AsyncBaseTransport):
    """Your own transport that carries every request over a real socket to `port` here."""

    def __init__(self, port: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._port = port

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host="127.0.0.1", port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.anyio
async def test_an_answer_over_a_real_socket_warns_once_at_the_callers_line(
    emulator: EmulatorServer,
) -> None:
    """Plain http to another host over a real socket (httpcore's network_stream): one warning."""
    async with httpx.AsyncClient(transport=_ToLoopback(emulator.port)) as http:
        client = AsyncClient(SECRET, base_url=OFF_MACHINE[0], http_client=http)
        made_at = sys._getframe().f_lineno - 1
        async with client:
            with pytest.warns(InsecureURLWarning, match="off this machine") as record:
                pages = [await client.search("chill lo-fi beats", limit=1) for _ in range(2)]
    assert [len(page.tracks) for page in pages] == [1, 1]
    assert len(record) == 1
    assert (record[0].filename, record[0].lineno) == (__file__, made_at)
    assert SECRET not in str(record[0].message)


@pytest.mark.parametrize("url", ON_MACHINE_OR_TLS)
def test_https_or_loopback_does_not_warn(url: str) -> None:
    """https anywhere, or plain http on this machine: no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AsyncClient(SECRET, base_url=url)
        Client(SECRET, base_url=url).close()


@pytest.mark.anyio
async def test_key_goes_only_to_the_base_url_host(emulator: EmulatorServer) -> None:
    """Every request the emulator saw carried the key; its request log holds only a hash of it."""
    async with AsyncClient(**_options(emulator, None)) as client:
        await client.search("chill lo-fi beats", limit=1)
        await anyio.lowlevel.checkpoint()
    records = emulator.emulator.requests
    assert records
    assert all(record.key_id == emulator.emulator.key_id(SECRET) for record in records)
    assert SECRET not in repr(records)
