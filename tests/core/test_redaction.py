"""A password in `base_url` is never shown, and plain http through a proxy warns."""

from __future__ import annotations

import base64
import logging
import warnings

import pytest

from audioscape_async import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    Client,
    InsecureURLWarning,
    InvalidParameterError,
)
from tests.helpers import API_KEY
from tests.reliability.servers import RawServer, answer, redirect

PASSWORD = "hunter2-very-secret"


@pytest.mark.anyio
async def test_userinfo_is_sent_as_basic_auth_and_never_shown(
    sdk_transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`https://user:pass@host` works on both transports; repr and logs hide the password."""
    caplog.set_level(logging.DEBUG)
    with RawServer(answer()) as server:
        url = server.url(host=f"proxyuser:{PASSWORD}@127.0.0.1")
        async with AsyncClient(API_KEY, base_url=url, transport=sdk_transport) as client:
            page = await client.search("calm piano")
            shown = repr(client)
    assert page.tracks
    sent = server.requests[0].headers["authorization"]
    assert base64.b64decode(sent.split()[1]).decode() == f"proxyuser:{PASSWORD}"
    assert b"proxyuser" not in server.requests[0].head.split(b"\r\n")[0]
    assert PASSWORD not in shown
    assert "***@127.0.0.1" in shown
    assert PASSWORD not in caplog.text
    assert "/developer/v1/search" in caplog.text


@pytest.mark.anyio
async def test_errors_and_redirects_never_show_the_password() -> None:
    """A connection error and a redirect's message name the host, not the password."""
    with RawServer(redirect(302, "https://elsewhere.example/")) as server:
        url = server.url(host=f"u:{PASSWORD}@127.0.0.1")
        async with AsyncClient(API_KEY, base_url=url, max_retries=0) as client:
            with pytest.raises(APIStatusError) as redirected:
                await client.search("calm piano")
    assert PASSWORD not in str(redirected.value)
    assert "***@127.0.0.1" in str(redirected.value)
    async with AsyncClient(
        API_KEY, base_url=f"http://u:{PASSWORD}@127.0.0.1:9/x", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError) as refused:
            await client.search("calm piano")
    assert PASSWORD not in str(refused.value)


def test_warnings_and_bad_urls_never_show_the_password() -> None:
    """The insecure-URL warning and a bad-URL error print the URL without its password."""
    client = AsyncClient(API_KEY, base_url=f"http://u:{PASSWORD}@api.example.com/v1")
    insecure = client._pipeline.config.insecure
    assert insecure is not None
    with pytest.warns(InsecureURLWarning) as caught:
        insecure.warn()
    assert PASSWORD not in str(caught[0].message)
    assert "http://***@api.example.com" in str(caught[0].message)
    with pytest.raises(InvalidParameterError) as bad:
        AsyncClient(API_KEY, base_url=f"ftp://u:{PASSWORD}@api.example.com/v1")
    assert PASSWORD not in str(bad.value)
    with Client(API_KEY, base_url=f"https://u:{PASSWORD}@api.example.com/v1") as client:
        assert PASSWORD not in repr(client)
        assert PASSWORD not in str(client.base_url)


def test_plain_http_through_an_environment_proxy_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    """http to 127.0.0.1 is quiet, unless an environment proxy would carry it off the machine."""

    def insecure() -> str | None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # decided when made, said only over a network
            client = AsyncClient(API_KEY, base_url="http://127.0.0.1:8080/v1")
        found = client._pipeline.config.insecure
        return None if found is None else found.message

    assert insecure() is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    assert "through a proxy" in (insecure() or "")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert insecure() is None
