"""Constants and helpers shared by the crawl and command-line tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from audioscape_async import AsyncClient, CrawlStats, RetryPolicy
from audioscape_async.emulator import EmulatorServer

QUERY = "chill lo-fi beats"


#: Fast retries: the faults here are meant to be retried, not waited for.
QUICK = RetryPolicy(max_retries=8, initial_backoff=0.001, max_backoff=0.01)


def client_for(server: EmulatorServer, **options: object) -> AsyncClient:
    """An AsyncClient of `server`, with quick retries unless `options` say otherwise."""
    options.setdefault("retry", QUICK)
    return AsyncClient(server.api_key, base_url=server.url, timeout=5.0, **options)  # type: ignore[arg-type]


async def walked_ids(server: EmulatorServer, **walk: object) -> list[str]:
    """The ids of QUERY's tracks as a plain walk delivers them: what a crawl must equal."""
    async with client_for(server) as client:
        return [track.asset_id async for track in client.iter_tracks(QUERY, **walk)]  # type: ignore[arg-type]


MOODS = ["chill lo-fi beats", "lofi study", "sad piano"]


def read_records(path: Path, fmt: str = "jsonl") -> list[dict[str, object]]:
    """The records of a crawl's output file, in any format, as dicts."""
    import csv
    import gzip

    if fmt == "jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]
    if fmt == "jsonl.gz":
        return [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        ints = ("query_index", "query_rank", "query_offset", "matched_queries")
        return [{k: int(v) if k in ints else v for k, v in row.items()} for row in rows]
    pq = pytest.importorskip("pyarrow.parquet")
    return list(pq.read_table(path).to_pylist())


def listing(directory: Path) -> list[str]:
    """The names in `directory`, sorted."""
    return sorted(p.name for p in directory.iterdir())


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m audioscape_async ARGS`` with `env` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "audioscape_async", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint as one object: its first line with every complete journal line applied."""
    first, *journal = path.read_bytes().split(b"\n")
    saved: dict[str, Any] = orjson.loads(first)
    state = saved["state"]
    for line in journal[:-1]:  # the last piece: empty, or an append a kill cut short
        entry = orjson.loads(line)
        state["output_bytes"] = entry["output_bytes"]
        if entry.get("finished"):
            state["finished"] = True
        else:
            state["queries"][entry["query"]] = {
                key: entry[key] for key in ("offset", "delivered", "done")
            }
    return saved


def stop_after(pages: int) -> Callable[[CrawlStats], None]:
    """An `on_progress` hook that interrupts a crawl (as Ctrl-C) once it has `pages` pages."""

    def stop(stats: CrawlStats) -> None:
        if stats.pages == pages:
            raise KeyboardInterrupt

    return stop
