"""9. A many-query crawl against the same queries crawled one by one; 9b. linear in queries.

`crawl_to_file` with 20 queries (one de-duplicated file, provenance on every
line, one checkpoint) against 20 single-query `crawl_to_file` runs into 20
files, over the same client, the emulator in a process of its own with 10 ms
of latency per answer (as with a real network). Rounds are interleaved; the
ratio is the many-query crawl's time over the sum of the single crawls'.

9b: `crawl_to_file` of many one-page queries (10 tracks each, each query new to
the emulator) against 100 of them, the emulator with no latency and a small
catalog: the time per query of the large plan over that of the small one.
Each page appends one line to the checkpoint, whatever the plan's size.

9c: the cost of `durable=True` (an fsync of the part and of the checkpoint
per page): one query's 5,000 tracks in pages of 100 at concurrency 8, with and
without, interleaved, on the same emulator (no latency: the worst case).
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


async def _linear(
    url: str, key: str, sizes: tuple[int, int], rounds: int
) -> dict[str, list[float]]:
    """Seconds per query of one crawl_to_file of each size, interleaved, new queries each run."""
    from audioscape_async import AsyncClient, RetryPolicy

    samples: dict[str, list[float]] = {f"{n:,} one-page queries": [] for n in sizes}
    work = Path(tempfile.mkdtemp(prefix="bench-linear-"))
    try:
        async with AsyncClient(key, base_url=url, retry=RetryPolicy(max_retries=5)) as client:
            for round_number in range(rounds):
                order = list(sizes)
                random.shuffle(order)
                for n in order:
                    queries = [f"{QUERIES[i % len(QUERIES)]} r{round_number} {i}" for i in range(n)]
                    started = time.perf_counter()
                    await client.crawl_to_file(
                        queries, work / f"{round_number}-{n}.jsonl", max_items=10, page_size=10
                    )
                    samples[f"{n:,} one-page queries"].append((time.perf_counter() - started) / n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return samples


async def _durable(url: str, key: str, tracks: int, rounds: int) -> dict[str, list[float]]:
    from audioscape_async import AsyncClient

    samples: dict[str, list[float]] = {"durable=False": [], "durable=True": []}
    work = Path(tempfile.mkdtemp(prefix="bench-durable-"))
    try:
        async with AsyncClient(key, base_url=url) as client:
            await client.crawl_to_file(QUERIES[0], work / "warm.jsonl", max_items=100)
            for round_number in range(rounds):
                names = list(samples)
                random.shuffle(names)
                for name in names:
                    started = time.perf_counter()
                    await client.crawl_to_file(
                        QUERIES[0],
                        work / f"{round_number}-{name}.jsonl",
                        max_items=tracks,
                        concurrency=8,
                        durable=name == "durable=True",
                    )
                    samples[name].append((time.perf_counter() - started) / (tracks / 100))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return samples


def _linear_rows(settings: Settings) -> list[Result]:
    from audioscape_async.emulator import EmulatorProcess

    big = settings.pick(10_000, 1_000)
    rounds = settings.pick(2, 1)
    tracks = settings.pick(5_000, 500)
    with EmulatorProcess(tracks=settings.pick(20_000, 2_000)) as emulator:
        samples = run_async(_linear(emulator.url, emulator.api_key, (100, big), rounds))
        durable = run_async(_durable(emulator.url, emulator.api_key, tracks, settings.pick(5, 1)))
    ms = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    small_name, big_name = "100 one-page queries", f"{big:,} one-page queries"
    durable_ms = {name: statistics.median(values) * 1e3 for name, values in durable.items()}
    durable_row = Result(
        benchmark=f"9c. crawl_to_file of {tracks:,} tracks (pages of 100): durable=True",
        variants=durable_ms,
        unit="ms/page",
        ratio_label="durable=True / durable=False (reported, no target)",
        ratio=durable_ms["durable=True"] / durable_ms["durable=False"],
        target="",
        notes=[
            "concurrency 8, no latency; an fsync of OUT.part and of OUT.checkpoint per page, "
            "on this machine's disk",
            "per round: "
            + ", ".join(
                f"{d / f:.2f}"
                for d, f in zip(durable["durable=True"], durable["durable=False"], strict=True)
            ),
        ],
    )
    linear_row = Result(
        benchmark=f"9b. crawl_to_file of {big:,} one-page queries vs 100: time per query",
        variants=ms,
        unit="ms/query",
        ratio_label=f"{big:,} / 100",
        ratio=ms[big_name] / ms[small_name],
        target="<= 2.0",
        notes=[
            f"emulator with {settings.pick(20_000, 2_000):,} tracks, no latency; each query "
            f"new to it (it ranks each once, in both); {rounds} interleaved round(s)",
            "per round: "
            + ", ".join(
                f"{b / s:.2f}" for b, s in zip(samples[big_name], samples[small_name], strict=True)
            ),
        ],
    )
    return [linear_row, durable_row]


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
        ),
        *_linear_rows(settings),
    ]
