"""Where a piece of the SDK runs: which process (forks) and which event loop.

Connection pools, gates and loop threads belong to one process and one event
loop. Two questions tell whose they are, asked here and nowhere else:

- `fork_generation()`: how many forks this process came out of. A part made
  before a fork records it; in the child the number differs, and the part
  leaves the parent's sockets and threads alone (never closes them: they are
  the parent's too) and builds its own, as redis-py's connection pools do.
  What it leaves goes to `keep_inherited`: closing it would not only close
  the child's copy of a socket, but (an asyncio connection, as aiohttp's
  pool does when collected) take it out of the epoll set the child shares
  with the parent, whose loop would then wait on it forever.
- `current_loop()` / `on_asyncio()`: the event loop running in this thread,
  asyncio's or trio's, without importing trio (it is loaded only if a caller
  runs on it) or sniffio (no dependency of the SDK).
- `closed_error()`: the error of a call on a client that is closed, or was
  closed under it, `AsyncClient` or blocking `Client`, worded here only.
"""

from __future__ import annotations

import os
import sys

from ._exceptions import AudioScapeError

__all__ = ["closed_error", "current_loop", "fork_generation", "keep_inherited", "on_asyncio"]

_generation = 0


def _forked() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def fork_generation() -> int:
    """How many forks this process came out of (0 in a process that was started, not forked)."""
    return _generation


#: The parent's parts a forked child leaves alone (`keep_inherited`).
_inherited: list[object] = []


def keep_inherited(part: object) -> None:
    """Keep `part`, made before a fork, from ever being closed or collected in this child.

    Not even at exit, when Python empties every module: the list holds one
    reference that nothing ever drops.
    """
    if not _inherited:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(_inherited))
    _inherited.append(part)


def current_loop() -> object:
    """The event loop running in this thread: asyncio's loop, trio's token, or None."""
    import asyncio

    loop = asyncio._get_running_loop()
    if loop is not None:
        return loop
    return _trio_token()


def on_asyncio() -> bool:
    """Whether this thread runs an asyncio loop."""
    import asyncio

    return asyncio._get_running_loop() is not None


def _trio_token() -> object:
    trio = sys.modules.get("trio")  # not imported: nobody runs trio
    if trio is None:
        return None
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:  # imported, but this thread runs no trio loop
        return None
    except AttributeError:
        # Another thread is importing trio right now (httpcore does, on a client's
        # first call): a thread that runs trio had it imported whole, so not this one.
        return None


def closed_error(client: str = "AsyncClient", *, during_call: bool = False) -> AudioScapeError:
    """The error of a call on a closed `client` ("AsyncClient" or "Client"), or of one it cut short.

    A call cut short by the async core says "the client": the core cannot tell
    whether a blocking `Client` runs it.
    """
    if during_call:
        who = "client" if client == "AsyncClient" else client
        return AudioScapeError(f"the {who} was closed while this call was running")
    return AudioScapeError(f"this {client} is closed; create a new one")
