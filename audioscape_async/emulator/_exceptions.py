"""The emulator's exceptions.

EmulatorError            anything the emulator refuses or fails to do
├── CatalogError         a catalog file or a catalog argument is unusable (also a ValueError)
└── EmulatorStartupError a server thread or child process did not come up in time
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Base class of every error the emulator raises on purpose."""


class CatalogError(EmulatorError, ValueError):
    """Raised when a catalog file has a bad row or a catalog argument is invalid."""


class EmulatorStartupError(EmulatorError, RuntimeError):
    """Raised when a server did not accept connections within its startup timeout."""
