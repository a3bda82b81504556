"""`_context`: which process (how many forks deep) and which event loop a piece of the SDK runs in.

`fork_generation` counts the forks a process came out of, so that a part made before
a fork knows it is the parent's; `keep_inherited` keeps such a part from ever being
closed; `current_loop` and `on_asyncio` name the loop running in this thread,
asyncio's or trio's, without importing trio.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import types

import pytest

from audioscape_async._context import current_loop, on_asyncio


def _run(script: str) -> list[str]:
    """The lines a fresh interpreter prints running `script`."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.splitlines()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_generation_counts_the_forks_a_process_came_out_of() -> None:
    """0 in a started process, 1 in its child, 2 in a grandchild; the parent stays at 0."""
    script = """
import os
from audioscape_async._context import fork_generation
read, write = os.pipe()
if os.fork() == 0:
    child = fork_generation()
    pid = os.fork()
    if pid == 0:
        os.write(write, f"grandchild {fork_generation()}\\n".encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.write(write, f"child {child}\\n".encode())
    os._exit(0)
os.close(write)
os.wait()
with os.fdopen(read) as lines:
    print(lines.read(), end="")
print("parent", fork_generation())
"""
    assert _run(script) == ["grandchild 2", "child 1", "parent 0"]


def test_a_kept_part_outlives_every_other_reference() -> None:
    """A part given to `keep_inherited` is never collected, though nothing else holds it; a
    part not given to it is (the control)."""
    script = """
import gc, weakref
from audioscape_async._context import keep_inherited
class Part:
    pass
kept, dropped = Part(), Part()
keep_inherited(kept)
refs = weakref.ref(kept), weakref.ref(dropped)
del kept, dropped
gc.collect()
print([ref() is not None for ref in refs])
"""
    assert _run(script) == ["[True, False]"]


@pytest.mark.anyio
async def test_the_running_loop_is_asyncios_loop_or_trios_token(
    anyio_backend: tuple[str, object],
) -> None:
    """On asyncio: its running loop, and `on_asyncio()`; on trio: the trio token, and not."""
    loop = current_loop()
    if anyio_backend[0] == "asyncio":
        assert loop is asyncio.get_running_loop()
        assert on_asyncio()
    else:
        import trio

        assert loop is not None
        assert loop == trio.lowlevel.current_trio_token()
        assert not on_asyncio()


def test_no_loop_where_none_runs_even_while_another_thread_runs_one() -> None:
    """A thread that runs no loop has none, whatever loops other threads run (trio imported)."""
    import trio

    seen: list[object] = []
    running = threading.Event()
    done = threading.Event()

    async def hold() -> None:
        running.set()
        await trio.to_thread.run_sync(done.wait)

    def asking() -> None:
        seen.append((current_loop(), on_asyncio()))

    runner = threading.Thread(target=trio.run, args=(hold,))
    runner.start()
    try:
        assert running.wait(10)
        asking()
        other = threading.Thread(target=asking)
        other.start()
        other.join()
    finally:
        done.set()
        runner.join()
    assert seen == [(None, False), (None, False)]


def test_asking_imports_no_event_loop_library() -> None:
    """Under asyncio and outside any loop, asking loads neither trio nor sniffio nor anyio."""
    script = """
import asyncio, sys
from audioscape_async._context import current_loop, on_asyncio
async def main():
    return current_loop() is asyncio.get_running_loop() and on_asyncio()
print(asyncio.run(main()), current_loop(), on_asyncio())
print(sorted(name for name in ("trio", "sniffio", "anyio") if name in sys.modules))
"""
    assert _run(script) == ["True None False", "[]"]


def test_a_trio_still_being_imported_runs_no_loop_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """While another thread imports trio, `sys.modules` holds it half made (no `lowlevel` yet):
    this thread runs no trio loop, and asking says so instead of raising."""
    monkeypatch.setitem(sys.modules, "trio", types.ModuleType("trio"))
    assert current_loop() is None
    assert not on_asyncio()
