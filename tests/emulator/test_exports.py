"""The emulator's public surface, pinned."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import warnings

import pytest

import audioscape_async
import audioscape_async.emulator as emulator


def test_public_names_are_pinned() -> None:
    """`__all__` lists exactly the public API; an accidental export or removal fails here."""
    assert sorted(emulator.__all__) == sorted([
        "ADMIN_PREFIX", "BASE_PATH", "CATALOG_COLUMNS", "DEMO_API_KEY", "FAULT_HEADER",
        "FAULT_NAMES", "NO_FAULT", "Catalog", "CatalogError", "CatalogTrack", "Emulator",
        "EmulatorError", "EmulatorProcess", "EmulatorServer", "EmulatorStartupError", "Faults",
        "KeyRateLimit", "RequestRecord", "add_serve_arguments", "create_app", "generate_catalog",
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


def test_no_emulator_name_is_an_sdk_name() -> None:
    """No public name of the emulator, nor any name one of its modules defines, is the SDK's.

    A test that imports `Track` from both packages would otherwise read one way and mean
    the other; the SDK's `__all__` is the list to stay clear of.
    """
    sdk_names = set(audioscape_async.__all__)
    clashes = {f"audioscape_async.emulator.{name}" for name in emulator.__all__}
    clashes = {name for name in clashes if name.rpartition(".")[2] in sdk_names}
    for info in pkgutil.iter_modules(emulator.__path__):
        module = importlib.import_module(f"audioscape_async.emulator.{info.name}")
        for name, value in vars(module).items():
            defined_here = getattr(value, "__module__", module.__name__) == module.__name__
            if not name.startswith("_") and defined_here and name in sdk_names:
                clashes.add(f"{module.__name__}.{name}")
    assert clashes == set()


@pytest.mark.parametrize(("old", "new"), [("Track", "CatalogTrack"), ("RateLimit", "KeyRateLimit")])
def test_old_names_warn_and_still_work(old: str, new: str) -> None:
    """An old name still imports, as the new object, warning at the importer's line.

    The `DeprecationWarning` names the replacement, and the old name is in neither
    `__all__` nor `dir()`, so a star import or a completion list never offers it.
    """
    namespace: dict[str, object] = {}
    with pytest.warns(
        DeprecationWarning,
        match=rf"emulator\.{old} is deprecated.*use "
        rf"audioscape_async\.emulator\.{new}\b",
    ) as caught:
        exec(f"from audioscape_async.emulator import {old} as value", namespace)
    assert namespace["value"] is getattr(emulator, new)
    assert {warning.filename for warning in caught} == {"<string>"}
    with pytest.warns(DeprecationWarning, match=new) as caught:
        value = getattr(emulator, old)
    assert value is getattr(emulator, new)
    assert caught[0].filename == __file__
    assert old not in emulator.__all__
    assert old not in dir(emulator)


def test_old_names_build_what_they_built() -> None:
    """Code written against the old names runs unchanged (apart from the warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from audioscape_async.emulator import RateLimit, Track
    limit = RateLimit(rate=0.5, burst=3, retry_after="seconds")
    assert (limit.rate, limit.burst, limit.retry_after) == (0.5, 3, "seconds")
    assert RateLimit.parse("10/20") == emulator.KeyRateLimit(10, 20)
    track = Track("1", "Night Drive", "Neon", "Roads", "synthwave", 200.0, 110.0)
    catalog = emulator.Catalog.from_tracks([track])
    found = catalog.get("1")
    assert found is not None
    assert (found.name, found.artist, found.genre) == ("Night Drive", "Neon", "synthwave")


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    """The deprecation hook answers only for the old names; anything else fails as before."""
    with pytest.raises(AttributeError, match="has no attribute 'SearchFilters'"):
        emulator.SearchFilters  # noqa: B018
    with pytest.raises(ImportError, match="SearchFilters"):
        exec("from audioscape_async.emulator import SearchFilters", {})
