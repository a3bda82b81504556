"""The optional dependencies: which extra brings each, and the one message when one is missing.

Every feature behind an extra (the emulator, the aiohttp wire, `RedisBackend`,
Parquet output, Arrow and pandas) checks for it here, when it is asked for:
an import of `audioscape_async.emulator`, the making of a `RedisBackend`, a
crawl to a ``.parquet`` file. Each says the same one line, naming the extra to
install, as a `MissingExtraError` (an `AudioScapeError` and an `ImportError`,
so ``except ImportError`` around an optional import keeps working).

The check looks for the modules (`importlib.util.find_spec`) and imports
nothing: `import audioscape_async` stays light, and an extra imported later
off the event loop (aiohttp) is not imported on it here.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Final

from ._exceptions import AudioScapeError

__all__ = ["EXTRAS", "MissingExtraError", "import_extra", "installed", "missing_text", "require"]

#: Each extra of pyproject.toml, and the modules it brings that the SDK imports.
EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "emulator": ("starlette", "uvicorn"),
    "aiohttp": ("aiohttp",),
    "redis": ("redis",),
    "parquet": ("pyarrow",),
    "pandas": ("pyarrow", "pandas"),
}


def missing_text(what: str, extra: str, missing: str) -> str:
    """The one line that says `what` needs `extra`, whose module `missing` is not there."""
    return (
        f"{what} needs the '{extra}' extra ({missing} is not installed): "
        f"pip install 'audioscape-async[{extra}]'"
    )


class MissingExtraError(AudioScapeError, ImportError):
    """A feature was asked for whose extra is not installed; the message names the extra."""

    extra: str

    def __init__(self, what: str, extra: str, missing: str) -> None:
        super().__init__(missing_text(what, extra, missing))
        self.extra = extra
        self.name = missing  # ImportError's own field: the module that is not there


def installed(module: str) -> bool:
    """Whether `module` can be imported (a ``None`` in `sys.modules` blocks it, as Python does)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    import importlib.util  # imported where used: `import audioscape_async` does not need it

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(extra: str, what: str) -> None:
    """Raise `MissingExtraError` unless every module of `extra` is installed."""
    for module in EXTRAS[extra]:
        if not installed(module):
            raise MissingExtraError(what, extra, module)


def import_extra(module: str, extra: str, what: str) -> ModuleType:
    """Import `module` (of `extra`), or raise `MissingExtraError` instead of its ImportError."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = (error.name or module).split(".")[0]
        raise MissingExtraError(what, extra, missing) from None
