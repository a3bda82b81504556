"""`Client` from many threads making their first calls at once (one shared client, or one each).

Against the emulator. The first-use tests run in a fresh interpreter, so that
every import the first call makes (the event loop, httpx's pool, anyio) is
still cold when 32 threads make it at the same moment.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from audioscape_async.emulator import EmulatorServer

FIRST_CALLS = """
import sys, threading, time
from audioscape_async import Client

THREADS = 32
shared = Client() if sys.argv[1] == "shared" else None
start = threading.Barrier(THREADS)
outcomes = []

def first_call(index):
    start.wait(timeout=20)
    # Spread over the first call's imports (httpcore, trio: a quarter second),
    # so that some threads come while they are half done.
    time.sleep(index * 0.01)
    try:
        client = shared or Client()
        outcomes.append(len(client.search("chill lo-fi beats", limit=2).tracks))
    except BaseException as error:
        outcomes.append(repr(error))

threads = [threading.Thread(target=first_call, args=(i,)) for i in range(THREADS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(timeout=60)
print(sorted(map(str, outcomes)))
"""


@pytest.mark.parametrize("clients", ["shared", "one-each"])
def test_first_calls_from_many_threads_at_once(
    audioscape_server: EmulatorServer, clients: str
) -> None:
    """32 threads making their first call at the same moment (cold imports) all get a page."""
    env = {
        **os.environ,
        "AUDIOSCAPE_BASE_URL": audioscape_server.url,
        "AUDIOSCAPE_API_KEY": audioscape_server.api_key,
    }
    for _ in range(3):  # a race: a few fresh interpreters
        result = subprocess.run(
            [sys.executable, "-c", FIRST_CALLS, clients],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(["2"] * 32), result.stdout
        assert result.stderr == ""
