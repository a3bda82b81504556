"""The emulator's public surface, pinned."""

from __future__ import annotations

import subprocess
import sys

import audioscape_async.emulator as emulator


def test_public_names_are_pinned() -> None:
    """`__all__` lists exactly the public API; an accidental export or removal fails here."""
    assert sorted(emulator.__all__) == sorted([
        "ADMIN_PREFIX", "BASE_PATH", "CATALOG_COLUMNS", "DEMO_API_KEY", "FAULT_HEADER",
        "FAULT_NAMES", "NO_FAULT", "Catalog", "CatalogError", "Emulator", "EmulatorError",
        "EmulatorProcess", "EmulatorServer", "EmulatorStartupError", "Faults", "RateLimit",
        "RequestRecord", "Track", "add_serve_arguments", "create_app", "generate_catalog",
        "load_catalog", "openapi_document", "run_serve",
    ])  # fmt: skip
    for name in emulator.__all__:
        assert getattr(emulator, name) is not None
        if callable(getattr(emulator, name)):
            assert getattr(emulator, name).__doc__, name


def test_fault_names_are_the_documented_set() -> None:
    """Every documented fault has its name."""
    assert set(emulator.FAULT_NAMES) == {
        "500", "502", "503", "429", "429-date", "429-no-header", "latency", "drop",
        "drop-mid-body", "truncated", "non-json", "wrong-shape", "hang", "semantic-outage",
    }  # fmt: skip


def test_sdk_core_does_not_import_the_emulator() -> None:
    """Importing the SDK pulls in neither the emulator nor Starlette nor uvicorn."""
    code = (
        "import sys, audioscape_async; "
        "bad = [m for m in sys.modules if m.startswith(('audioscape_async.emulator', "
        "'starlette', 'uvicorn'))]; print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
