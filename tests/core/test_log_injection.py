"""Server text never forges a log line nor sends a terminal escape (issue 17, point 12).

A hostile or broken server puts a newline, an ANSI escape or a bidi override
in its error body or its request id. Every log line the SDK writes and every
error message it raises shows them escaped (``\\n``, ``\\x1b``, ``\\u202e``),
while the error's `body` keeps what the server sent, so nothing is lost.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from audioscape_async import APIStatusError, AsyncClient, Client, InternalServerError, RetryPolicy
from tests.helpers import API_KEY
from tests.reliability.servers import RawServer, answer

FORGED = "boom\n2026-12-05 09:00:00 CRITICAL audioscape_async: key rotated\x1b[2J\u202eevil"
NO_WAIT = RetryPolicy(max_retries=1, initial_backoff=0.0, max_backoff=0.0)


def _assert_clean(error: APIStatusError, caplog: pytest.LogCaptureFixture) -> None:
    lines = [record.getMessage() for record in caplog.records]
    assert any("retrying search" in line for line in lines), lines
    for text in [*lines, str(error), error.message]:
        assert text.isprintable(), repr(text)
    assert "boom\\n2026-12-05" in str(error)
    assert "\\x1b[2J" in str(error)
    assert "\\u202eevil" in str(error)
    assert isinstance(error.body, dict)
    assert error.body["error"] == FORGED  # the server's own text, kept as it came


@pytest.mark.anyio
async def test_an_error_body_cannot_forge_a_log_line(
    sdk_transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 whose message holds a newline and escapes: logged and raised escaped."""
    caplog.set_level(logging.DEBUG, logger="audioscape_async")
    body = orjson.dumps({"error": FORGED})
    with RawServer(answer(500, body)) as server:
        async with AsyncClient(
            API_KEY, base_url=server.url(), transport=sdk_transport, retry=NO_WAIT
        ) as client:
            with pytest.raises(InternalServerError) as caught:
                await client.search("calm piano")
    _assert_clean(caught.value, caplog)


def test_an_error_body_cannot_forge_a_log_line_through_the_sync_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The blocking client raises and logs the same escaped text."""
    caplog.set_level(logging.DEBUG, logger="audioscape_async")
    body = orjson.dumps({"error": FORGED})
    with (
        RawServer(answer(500, body)) as server,
        Client(API_KEY, base_url=server.url(), retry=NO_WAIT) as client,
        pytest.raises(InternalServerError) as caught,
    ):
        client.search("calm piano")
    _assert_clean(caught.value, caplog)


@pytest.mark.anyio
async def test_a_text_body_and_a_request_id_are_escaped(
    sdk_transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy's plain-text page and a request id with an escape are shown escaped."""
    caplog.set_level(logging.DEBUG, logger="audioscape_async")
    handler = answer(
        502,
        b"bad gateway\x1b[31m red",
        **{"content-type": "text/plain", "x-request-id": "req\x1b[2Jx"},
    )
    with RawServer(handler) as server:
        async with AsyncClient(
            API_KEY, base_url=server.url(), transport=sdk_transport, retry=NO_WAIT
        ) as client:
            with pytest.raises(APIStatusError) as caught:
                await client.search("calm piano")
    error = caught.value
    assert "bad gateway\\x1b[31m red" in str(error)
    for text in [*(record.getMessage() for record in caplog.records), str(error)]:
        assert text.isprintable(), repr(text)
    assert error.request_id in (None, "req\\x1b[2Jx")  # a wire may refuse the raw header
