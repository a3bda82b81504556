"""(6) Memory: peak RSS of a 1,000,000-track crawl to a file, and of 10,000 pages kept alive.

The crawl: `AsyncClient.crawl_to_file` (default transport, concurrency 8) in a
fresh client process, against the fixed-answer server in another process
serving synthetic pages up to ``meta.total`` = 1,000,000 with a distinct asset
id per track. Why not the emulator: a 1,000,000-track emulator takes about 6 s
to generate its catalog and 2 s to rank the query, and then serves ~1,000
pages/s on a core the client shares; the synthetic server answers in ~40 µs
a page, so the crawl takes seconds and the client's memory is what is measured.
What grows with the result set is only the crawl's set of seen asset ids
(issue 4 allows it); pages are written as they arrive.

Kept alive: 10,000 `SearchResponse` of 100 tracks each (the API's largest
page, 1,000,000 tracks in all), each decoded from its own page, in a fresh
process per variant: the SDK's slotted attrs classes vs pydantic v2 and msgspec
Structs (the floor) with the same fields.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ._common import Result, Settings, optional
from ._server import ServerProcess

NAME = "memory"
ROOT = Path(__file__).resolve().parents[1]


def _child(*args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._memory_child", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(settings: Settings) -> list[Result]:
    total = settings.pick(1_000_000, 20_000)
    with ServerProcess(total=total) as server, tempfile.TemporaryDirectory() as tmp:
        crawl = _child("crawl", server.url, str(Path(tmp) / "tracks.jsonl"), "8")
    assert crawl["tracks"] == total, crawl
    results = [
        Result(
            benchmark=f"6. peak RSS, {total:,}-track crawl_to_file",
            variants={"client process peak RSS": crawl["peak_mb"]},
            unit="MB",
            ratio_label="peak RSS / 200 MB",
            ratio=crawl["peak_mb"] / 200,
            target="< 1.0",
            notes=[
                f"{crawl['tracks']:,} tracks, {crawl['pages']:,} pages, "
                f"{crawl['bytes_written'] / 1e6:.0f} MB written in {crawl['seconds']:.1f} s "
                f"({crawl['pages'] / crawl['seconds']:,.0f} pages/s); RSS before the crawl "
                f"{crawl['baseline_mb']:.0f} MB",
            ],
            extra=crawl,
        )
    ]
    count, page_size = settings.pick(10_000, 500), 100
    kinds = ["sdk", "msgspec"]
    if optional("pydantic") is not None:
        kinds.append("pydantic")
    kept = {kind: _child("responses", kind, str(count), str(page_size)) for kind in kinds}
    variants = {f"{kind} (RSS growth)": kept[kind]["kept_mb"] for kind in kinds}
    notes = [f"{count:,} responses of {page_size} tracks kept alive; fresh process per variant"]
    if "pydantic" in kept:
        notes.append(
            f"SDK / pydantic v2: {kept['sdk']['kept_mb'] / kept['pydantic']['kept_mb']:.2f}"
        )
    results.append(
        Result(
            benchmark=f"6b. {count:,} SearchResponse kept alive",
            variants=variants,
            unit="MB",
            ratio_label="SDK / msgspec Structs RSS growth",
            ratio=kept["sdk"]["kept_mb"] / kept["msgspec"]["kept_mb"],
            target="<= 1.1",
            notes=notes,
            extra=kept,
        )
    )
    return results
