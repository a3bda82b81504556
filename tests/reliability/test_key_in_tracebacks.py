"""The API key never shows in a traceback tool's view of a failed call's frames.

rich's `show_locals` walks attrs fields (ignoring a class's own `__repr__`);
`traceback`'s `capture_locals` uses `repr`. Both render the failures of real
calls against the emulator, on both wires, async and sync.
"""

from __future__ import annotations

import io
import traceback

import pytest
from rich.console import Console
from rich.traceback import Traceback

from audioscape_async import AsyncClient, AudioScapeError, Client
from audioscape_async._config import SecretHeaders
from audioscape_async.emulator import EmulatorServer

KEY = "sk-tb-SECRET-0123456789"
FAULTS = ["500", "drop", "non-json", "429"]


def rendered(error: BaseException) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(
        Traceback.from_exception(
            type(error), error, error.__traceback__, show_locals=True, max_frames=1000
        )
    )
    plain = traceback.TracebackException.from_exception(error, capture_locals=True)
    return console.export_text() + "".join(plain.format())


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.anyio
async def test_async_failures_never_show_the_key(fault: str, sdk_transport: str) -> None:
    """A failed `AsyncClient` call's traceback, with every frame's locals, hides the key."""
    with EmulatorServer(tracks=50, api_keys=[KEY], faults={fault: 1.0}) as server:
        async with AsyncClient(
            KEY, base_url=server.url, transport=sdk_transport, max_retries=1
        ) as client:
            with pytest.raises(AudioScapeError) as caught:
                await client.search("dark boss")
    text = rendered(caught.value)
    assert "ClientConfig" in text  # the frames with the config were shown
    assert KEY not in text


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_sync_failures_never_show_the_key(transport: str) -> None:
    """The same through the sync `Client`."""
    with (
        EmulatorServer(tracks=50, api_keys=[KEY], faults={"500": 1.0}) as server,
        Client(KEY, base_url=server.url, transport=transport, max_retries=0) as client,
        pytest.raises(AudioScapeError) as caught,
    ):
        client.search("dark boss")
    assert KEY not in rendered(caught.value)


def test_secret_headers_mask_every_credential() -> None:
    """`SecretHeaders` shows other headers and masks the key, authorization and cookies."""
    headers = SecretHeaders(
        {"x-api-key": KEY, "Authorization": "Basic dXNlcjpwdw==", "cookie": "s=1", "accept": "a"}
    )
    shown = repr(headers)
    assert KEY not in shown
    assert "dXNlcjpwdw" not in shown
    assert "s=1" not in shown
    assert "'accept': 'a'" in shown
    assert headers["x-api-key"] == KEY  # still sent as is
