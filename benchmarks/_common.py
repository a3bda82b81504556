"""What every benchmark shares: the run settings, interleaved timing, and the result record."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUERY = "dark cinematic boss tension"


@dataclass(frozen=True)
class Settings:
    """How big a run is: `smoke` shrinks every benchmark to check that it still runs."""

    smoke: bool

    def pick(self, full: int, smoke: int) -> int:
        return smoke if self.smoke else full


@dataclass
class Result:
    """One row of the results table: a ratio of two variants against a target."""

    benchmark: str
    variants: dict[str, float]  # variant -> median
    unit: str
    ratio_label: str
    ratio: float | None
    target: str  # like "<= 1.15"
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.ratio is None or not self.target:
            return None
        op, _, bound = self.target.partition(" ")
        limit = float(bound)
        return {
            "<=": self.ratio <= limit,
            "<": self.ratio < limit,
            ">=": self.ratio >= limit,
            ">": self.ratio > limit,
        }[op]

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "variants": self.variants,
            "unit": self.unit,
            "ratio_label": self.ratio_label,
            "ratio": self.ratio,
            "target": self.target,
            "passed": self.passed,
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
        }


def medians(samples: Mapping[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def spread(numerator: list[float], denominator: list[float]) -> str:
    """The 10th to 90th percentile of a ratio taken round by round (rounds are interleaved)."""
    ratios = sorted(a / b for a, b in zip(numerator, denominator, strict=True))
    if len(ratios) < 10:
        return f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
    deciles = statistics.quantiles(ratios, n=10)
    return f"{deciles[0]:.2f}-{deciles[-1]:.2f}"


def interleave_sync(
    variants: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    batch: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds per call of each variant: `rounds` rounds, each running every variant once
    for `batch` calls, in a shuffled order (so drift on a noisy machine hits all alike).

    `clock=time.thread_time` counts only the CPU time of this thread: for work that is
    all CPU, it leaves out the time other processes on a shared machine take the core."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            call = variants[name]
            gc.collect()
            start = clock()
            for _ in range(batch):
                call()
            samples[name].append((clock() - start) / batch)
    return samples


async def interleave_async(
    variants: Mapping[str, Callable[[], Awaitable[object]]], *, rounds: int, batch: int
) -> dict[str, list[float]]:
    """`interleave_sync` for coroutine functions, in the running loop."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            call = variants[name]
            gc.collect()
            start = time.perf_counter()
            for _ in range(batch):
                await call()
            samples[name].append((time.perf_counter() - start) / batch)
    return samples


async def interleave_async_cpu(
    variants: Mapping[str, Callable[[], Awaitable[object]]], *, rounds: int, batch: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """`interleave_async` timed by two clocks at once: (CPU, wall) seconds per call.

    CPU is `time.process_time` of this whole process (every thread: aiohttp's
    resolver, the GC), which leaves out the server in its own process and other
    processes on a shared machine; the wall clock is shown beside it."""
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            call = variants[name]
            gc.collect()
            start_cpu, start = time.process_time(), time.perf_counter()
            for _ in range(batch):
                await call()
            wall[name].append((time.perf_counter() - start) / batch)
            cpu[name].append((time.process_time() - start_cpu) / batch)
    return cpu, wall


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_async(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def optional(module: str) -> Any | None:
    """Import a benchmark-only dependency, or None (the variant is skipped with a note)."""
    try:
        return __import__(module)
    except ImportError:
        print(f"  note: {module} is not installed; its variants are skipped")
        return None
