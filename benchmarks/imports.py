"""(4) Import time: `python -c "import audioscape_async"` vs `python -c "import httpx"`.

Whole processes (interpreter start-up included, as a user's script pays it),
many runs, interleaved, medians of each process's CPU time (user + system:
unlike the wall clock, it leaves out the time other processes on a shared
machine hold the cores). What is not needed for a search is imported
lazily, and msgspec (the decoder) on the first decode: the variant "then
decode a page" shows what that first decode adds, and "AsyncClient, Client"
what the sync facade (anyio's thread portal, asyncio) adds. From process start
to a first result, see first_result.py.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from ._common import Result, Settings, medians, spread

NAME = "imports"

ROOT = Path(__file__).resolve().parents[1]
_PAGE = orjson.dumps(
    {
        "tracks": [],
        "artists": [],
        "albums": [],
        "meta": {
            "total": 0,
            "limit": 1,
            "offset": 0,
            "search_method": "text",
            "matched_artist": None,
        },
    }
)
#: Run first, this makes a process behave as in an environment with only the SDK's own
#: dependencies: httpx imports its command line (click, rich, pygments: about 40 ms) when
#: click is installed, and httpcore imports trio (about 35 ms) when trio is; the
#: development environment has both, a user's may have neither.
LEAN = "import sys; sys.modules.update(click=None, trio=None); "
_DECODE = f"from audioscape_async._decode import decode_search_response as d; d({_PAGE!r})"
STATEMENTS = {
    "import audioscape_async": "import audioscape_async",
    "import audioscape_async, then decode a page": _DECODE,
    "from audioscape_async import AsyncClient, Client": (
        "from audioscape_async import AsyncClient, Client"
    ),
    "import httpx": "import httpx",
    "python -c pass": "pass",
    "lean: import audioscape_async": LEAN + "import audioscape_async",
    "lean: import httpx": LEAN + "import httpx",
}


def _env(pycache: str) -> dict[str, str]:
    # Installed packages import from bytecode (pip compiles on install); a shell with
    # PYTHONDONTWRITEBYTECODE set would make the SDK, run from its source tree, compile
    # itself on every start. A private bytecode cache puts both sides on bytecode.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": pycache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _children_cpu() -> float:
    """CPU seconds (user and system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(settings: Settings) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="audioscape-bench-pycache-") as pycache:
        return _run(settings, _env(pycache))


def _run(settings: Settings, env: dict[str, str]) -> list[Result]:
    for statement in STATEMENTS.values():  # warm the OS file cache and the bytecode
        subprocess.run([sys.executable, "-c", statement], env=env, check=True)
    samples: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    wall: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    names = list(STATEMENTS)
    for _ in range(settings.pick(40, 3)):
        random.shuffle(names)
        for name in names:
            start, cpu = time.perf_counter(), _children_cpu()
            subprocess.run([sys.executable, "-c", STATEMENTS[name]], env=env, check=True)
            wall[name].append(time.perf_counter() - start)
            samples[name].append(_children_cpu() - cpu)
    ms = {name: value * 1e3 for name, value in medians(samples).items()}
    wall_ms = medians(wall)
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, audioscape_async; "
            "print(' '.join(m for m in ('anyio', 'tenacity', 'cattrs', 'msgspec', 'orjson', "
            "'aiohttp', 'starlette', 'uvicorn', 'audioscape_async.emulator', "
            "'audioscape_async._cli') if m in sys.modules))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return [
        Result(
            benchmark="4. import time (whole process)",
            variants=ms,
            unit="ms",
            ratio_label="audioscape_async / httpx",
            ratio=ms["import audioscape_async"] / ms["import httpx"],
            target="<= 1.4",
            notes=[
                "CPU time (user + system) of each whole process, medians of interleaved runs; "
                "by the wall clock: audioscape_async / httpx = "
                f"{wall_ms['import audioscape_async'] / wall_ms['import httpx']:.2f}",
                "bytecode cached for both (PYTHONPYCACHEPREFIX), as for installed packages",
                "without click and trio (`lean`: httpx does not import its command line): "
                "audioscape_async / httpx = "
                f"{ms['lean: import audioscape_async'] / ms['lean: import httpx']:.2f}",
                "audioscape_async / httpx per round (p10-p90): "
                + spread(samples["import audioscape_async"], samples["import httpx"]),
                "heavy modules loaded by `import audioscape_async`: "
                + (
                    loaded
                    or "none of anyio, tenacity, cattrs, msgspec, orjson, aiohttp, starlette, "
                    "uvicorn, the emulator, the CLI"
                ),
            ],
        )
    ]
