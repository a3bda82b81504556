"""The package is complete: licence, project URLs, and an sdist that holds what its tests need.

Building is too slow for the suite (`nox -s package` builds both and runs `twine check`); these
tests read the configuration that decides what goes in.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]


@functools.cache
def _noxfile() -> ModuleType:
    """noxfile.py, loaded once (nox refuses a session registered twice)."""
    spec = importlib.util.spec_from_file_location("_noxfile_under_test", ROOT / "noxfile.py")
    assert spec is not None
    assert spec.loader is not None
    noxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noxfile)
    return noxfile


def _pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data


def test_licence_text_travels_with_the_package() -> None:
    """LICENSE is the MIT text, named in license-files (wheel) and in the sdist's include."""
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 AudioScape SDK authors" in text
    project = _pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert "LICENSE" in _pyproject()["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]


def test_project_urls_name_every_page_a_user_looks_for() -> None:
    """The metadata links home, documentation, source, changelog and issues."""
    urls = _pyproject()["project"]["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Source", "Changelog", "Issues"}
    assert all(url.startswith("https://") for url in urls.values())


def test_sdist_holds_every_top_level_entry_of_the_repository() -> None:
    """Each tracked top-level file or folder (examples/, benchmarks/...) goes into the sdist."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0 or not listed.stdout:
        pytest.skip("not a git checkout (an unpacked sdist holds only what it holds)")
    tracked = {line.split("/")[0] for line in listed.stdout.splitlines()}
    sdist = _pyproject()["tool"]["hatch"]["build"]["targets"]["sdist"]
    # hatchling always adds pyproject.toml and .gitignore; neither is a test's input.
    missing = tracked - set(sdist["include"]) - {"pyproject.toml", ".gitignore"}
    assert not missing, f"add to [tool.hatch.build.targets.sdist] include: {sorted(missing)}"


def test_ci_builds_and_checks_the_package() -> None:
    """CI runs the `package` session (python -m build, then twine check)."""
    noxfile = _noxfile()
    assert "package" in noxfile.CI_SESSIONS
    source = inspect.getsource(noxfile.package)
    assert '"-m", "build"' in source
    assert '"twine", "check"' in source


def test_every_test_that_interrupts_a_child_runs_under_a_launcher_that_ignores_sigint() -> None:
    """Each test file sending SIGINT is in noxfile.SIGNAL_TESTS (CI runs them with it ignored)."""
    noxfile = _noxfile()
    sending = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("test_*.py")
        if path.resolve() != Path(__file__).resolve()
        if "SIGINT" in (text := path.read_text(encoding="utf-8"))
        and ("send_signal" in text or "os.kill" in text)
    }
    assert sending == set(noxfile.SIGNAL_TESTS)
    assert "signals" in noxfile.CI_SESSIONS
