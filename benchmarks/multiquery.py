"""9. A many-query crawl against the same queries crawled one by one.

`crawl_to_file` with 20 queries (one de-duplicated file, provenance on every
line, one checkpoint) against 20 single-query `crawl_to_file` runs into 20
files, over the same client, the emulator in a process of its own with 10 ms
of latency per answer (as with a real network). Rounds are interleaved; the
ratio is the many-query crawl's time over the sum of the single crawls'.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ._common import Result, Settings, run_async

QUERIES = [
    "chill lo-fi beats", "dark cinematic boss tension", "upbeat summer vibes", "sad piano",
    "epic orchestral battle", "calm ambient pads", "retro synthwave drive", "jazzy cafe",
    "heavy metal riffs", "happy ukulele", "spooky halloween", "tropical house",
    "acoustic folk", "hip-hop boom bap", "dreamy shoegaze", "medieval tavern",
    "space exploration", "racing game techno", "cozy rain", "victory fanfare",
]  # fmt: skip
LATENCY = 0.01


async def _measure(url: str, key: str, per_query: int, rounds: int) -> dict[str, list[float]]:
    from audioscape_async import AsyncClient, RetryPolicy

    samples: dict[str, list[float]] = {"20 single crawls": [], "one 20-query crawl": []}
    work = Path(tempfile.mkdtemp(prefix="bench-mq-"))
    try:
        async with AsyncClient(key, base_url=url, retry=RetryPolicy(max_retries=5)) as client:

            async def singles(folder: Path) -> None:
                for index, query in enumerate(QUERIES):
                    await client.crawl_to_file(
                        query, folder / f"{index}.jsonl", max_items=per_query, concurrency=8
                    )

            async def many(folder: Path) -> None:
                await client.crawl_to_file(
                    QUERIES, folder / "all.jsonl", max_items=per_query, concurrency=8
                )

            variants = {"20 single crawls": singles, "one 20-query crawl": many}
            (work / "warm").mkdir(parents=True)
            await many(work / "warm")  # the emulator ranks each query once
            for round_number in range(rounds):
                names = list(variants)
                random.shuffle(names)
                for name in names:
                    folder = work / f"{round_number}-{name.replace(' ', '-')}"
                    folder.mkdir(parents=True)
                    started = time.perf_counter()
                    await variants[name](folder)
                    samples[name].append(time.perf_counter() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return samples


def run(settings: Settings) -> list[Result]:
    from audioscape_async.emulator import EmulatorProcess, Faults

    per_query = settings.pick(500, 100)
    rounds = settings.pick(5, 1)
    faults = Faults({"latency": 1.0}, latency=LATENCY)
    with EmulatorProcess(tracks=settings.pick(40_000, 4_000), faults=faults) as emulator:
        samples = run_async(_measure(emulator.url, emulator.api_key, per_query, rounds))
    ms = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    ratio = ms["one 20-query crawl"] / ms["20 single crawls"]
    return [
        Result(
            benchmark=f"9. 20-query crawl_to_file ({per_query:,} tracks each), 10 ms latency",
            variants=ms,
            unit="ms/crawl",
            ratio_label="one 20-query crawl / 20 single crawls",
            ratio=ratio,
            target="<= 1.1",
            notes=[
                "the same client and concurrency 8; the many-query crawl also de-duplicates "
                "across queries and writes provenance, and writes one file",
                f"{rounds} interleaved rounds",
            ],
        )
    ]
