"""Output formats: chosen by the option over the extension, checked before any request."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioscape_async.emulator import EmulatorServer
from tests.crawl.support import QUERY, client_for, read_records


@pytest.mark.anyio
async def test_standard_output_and_formats_are_checked_first(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """out='-' refuses resume and other formats; an unknown format is refused; nothing is sent."""
    from audioscape_async import InvalidParameterError

    async with client_for(server) as client:
        with pytest.raises(InvalidParameterError, match="cannot be resumed"):
            await client.crawl_to_file(QUERY, "-", resume=True)
        with pytest.raises(InvalidParameterError, match="JSON Lines only"):
            await client.crawl_to_file(QUERY, "-", format="csv")
        with pytest.raises(InvalidParameterError, match="must be one of jsonl"):
            await client.crawl_to_file(QUERY, tmp_path / "x", format="xml")
        with pytest.raises(InvalidParameterError, match="at least one query"):
            await client.crawl_to_file([], tmp_path / "x")
    assert server.emulator.requests == []


@pytest.mark.anyio
async def test_format_option_beats_the_extension(server: EmulatorServer, tmp_path: Path) -> None:
    """format='jsonl.gz' writes gzip whatever the file is called."""
    out = tmp_path / "tracks.data"
    async with client_for(server) as client:
        await client.crawl_to_file(QUERY, out, max_items=120, format="jsonl.gz")
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert len(read_records(out, "jsonl.gz")) == 120
