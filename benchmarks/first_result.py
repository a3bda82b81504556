"""(12) Start-up: from process start to the first search result printed.

Whole processes, as a script that searches once pays it: interpreter start,
imports, client construction, the first request (connection included), the
first decode and the print. Each variant is a fresh ``python -c`` that
searches the fixed-answer benchmark server (`_server.ServerProcess`, another
process, started once) and prints the first track's asset id; many rounds,
interleaved. The CPU time (user + system) is the child's own, from start to
exit (`os.wait4`), so the server's work and other processes on a shared
machine are left out; the wall time runs from the spawn to the line read on
its standard output.

The yardstick is a client as openapi-python-client generates it
(`_generated_client`: attrs models, `httpx.Client`, `search.sync`).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._common import QUERY, Result, Settings, medians, spread
from ._server import ServerProcess
from .imports import LEAN

NAME = "first_result"

ROOT = Path(__file__).resolve().parents[1]

_SYNC = """
import sys
from audioscape_async import Client
with Client(sys.argv[2], base_url=sys.argv[1]{transport}) as client:
    print(client.search(sys.argv[3], limit=10).tracks[0].asset_id, flush=True)
"""
_ASYNC = """
import asyncio, sys
from audioscape_async import AsyncClient
async def main():
    async with AsyncClient(sys.argv[2], base_url=sys.argv[1]{transport}) as client:
        page = await client.search(sys.argv[3], limit=10)
    print(page.tracks[0].asset_id, flush=True)
asyncio.run(main())
"""
_GENERATED = """
import sys
from benchmarks._generated_client import AuthenticatedClient, SearchBody, search
client = AuthenticatedClient(base_url=sys.argv[1], token=sys.argv[2], prefix="",
                             auth_header_name="x-api-key")
with client:
    page = search.sync(client=client, body=SearchBody(query=sys.argv[3], limit=10))
    print(page.tracks[0].asset_id, flush=True)
"""
_HTTPX = """
import sys, httpx
with httpx.Client(base_url=sys.argv[1], headers={"x-api-key": sys.argv[2]}) as client:
    answer = client.post("/search", json={"query": sys.argv[3], "limit": 10})
    print(answer.json()["tracks"][0]["asset_id"], flush=True)
"""

GENERATED = "generated client: search.sync"
SYNC_DEFAULT = "SDK Client.search (default transport)"
SYNC_HTTPX = 'SDK Client.search (transport="httpx")'
ASYNC_DEFAULT = "SDK asyncio.run(AsyncClient.search) (default transport)"
ASYNC_HTTPX = 'SDK asyncio.run(AsyncClient.search) (transport="httpx")'
RAW_HTTPX = "raw httpx.Client.post + response.json()"
SCRIPTS = {
    GENERATED: _GENERATED,
    SYNC_DEFAULT: _SYNC.format(transport=""),
    SYNC_HTTPX: _SYNC.format(transport=', transport="httpx"'),
    ASYNC_DEFAULT: _ASYNC.format(transport=""),
    ASYNC_HTTPX: _ASYNC.format(transport=', transport="httpx"'),
    RAW_HTTPX: _HTTPX,
}
#: The same scripts as in an environment without click and trio (see imports.LEAN).
LEAN_NAMES = (GENERATED, SYNC_DEFAULT, SYNC_HTTPX)
SCRIPTS.update({f"lean: {name}": LEAN + SCRIPTS[name] for name in LEAN_NAMES})


def _env(pycache: str) -> dict[str, str]:
    # As in imports.py: both sides import from bytecode, as installed packages do.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": pycache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("AUDIOSCAPE_LOG", None)
    return env


def _once(script: str, argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """One process: (CPU seconds, wall seconds to the first line, that line)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", script, *argv], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    wall = time.perf_counter() - start
    process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or not line.strip():
        raise RuntimeError(f"a first-result child failed (exit {process.returncode}): {line!r}")
    return usage.ru_utime + usage.ru_stime, wall, line.strip()


def run(settings: Settings) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="audioscape-bench-pycache-") as pycache:
        env = _env(pycache)
        with ServerProcess(total=1000) as server:
            return _run(settings, env, [server.url, server.api_key, QUERY])


def _run(settings: Settings, env: dict[str, str], argv: list[str]) -> list[Result]:
    answers = {_once(script, argv, env)[2] for script in SCRIPTS.values()}  # warm the bytecode
    if len(answers) != 1:
        raise RuntimeError(f"the variants printed different first results: {answers}")
    cpu: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    wall: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    names = list(SCRIPTS)
    for _ in range(settings.pick(30, 2)):
        random.shuffle(names)
        for name in names:
            cpu_s, wall_s, _ = _once(SCRIPTS[name], argv, env)
            cpu[name].append(cpu_s)
            wall[name].append(wall_s)
    ms = {name: value * 1e3 for name, value in medians(cpu).items()}
    wall_ms = {name: value * 1e3 for name, value in medians(wall).items()}

    def ratios(name: str) -> list[str]:
        return [
            f"{name} / generated: CPU {ms[name] / ms[GENERATED]:.2f} "
            f"(per round p10-p90 {spread(cpu[name], cpu[GENERATED])}), "
            f"wall {wall_ms[name] / wall_ms[GENERATED]:.2f}"
        ]

    common = [
        "CPU time (user + system) of each whole process (os.wait4), medians of interleaved runs",
        "wall medians, spawn to first line printed: "
        + ", ".join(f"{name}: {value:.0f} ms" for name, value in wall_ms.items()),
    ]
    return [
        Result(
            benchmark="12a. process start to first result: sync Client, default transport",
            variants={name: ms[name] for name in (GENERATED, SYNC_DEFAULT, ASYNC_DEFAULT)},
            unit="ms",
            ratio_label="SDK Client (default transport) / generated client, CPU",
            ratio=ms[SYNC_DEFAULT] / ms[GENERATED],
            target="<= 1.2",
            notes=[*ratios(SYNC_DEFAULT), *ratios(ASYNC_DEFAULT), *common],
        ),
        Result(
            benchmark='12b. process start to first result: transport="httpx"',
            variants={name: ms[name] for name in (GENERATED, SYNC_HTTPX, ASYNC_HTTPX, RAW_HTTPX)},
            unit="ms",
            ratio_label='SDK Client (transport="httpx") / generated client, CPU',
            ratio=ms[SYNC_HTTPX] / ms[GENERATED],
            target="<= 1.2",
            notes=[*ratios(SYNC_HTTPX), *ratios(ASYNC_HTTPX)],
        ),
        Result(
            benchmark="12c. process start to first result, without click and trio",
            variants={f"lean: {name}": ms[f"lean: {name}"] for name in LEAN_NAMES},
            unit="ms",
            ratio_label='SDK Client (transport="httpx") / generated client, CPU',
            ratio=ms[f"lean: {SYNC_HTTPX}"] / ms[f"lean: {GENERATED}"],
            target="<= 1.2",
            notes=[
                "as where only the SDK's dependencies are installed: httpx does not import its "
                "command line (click, rich) and httpcore does not import trio",
                "default transport / generated client, CPU: "
                f"{ms[f'lean: {SYNC_DEFAULT}'] / ms[f'lean: {GENERATED}']:.2f}",
            ],
        ),
    ]
