"""One session per concern. `nox -l` lists them; `nox -s tests` runs one.

Python versions come from the classifiers in pyproject.toml; a version that is
not installed is skipped, not failed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nox

nox.options.error_on_missing_interpreters = False
nox.options.default_venv_backend = "venv"

#: What CI runs, in order: `.ci/run` runs exactly these sessions (`nox --no-venv
#: --no-install` in the environment it built), and `nox` alone runs them here.
CI_SESSIONS = ["tests", "signals", "lint", "typecheck", "bench_smoke", "package", "docs"]
nox.options.sessions = CI_SESSIONS

ROOT = Path(__file__).parent
PYTHONS = re.findall(
    r'"Programming Language :: Python :: (3\.\d+)"', (ROOT / "pyproject.toml").read_text()
)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite, every async test on asyncio and trio."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "not soak", *session.posargs)


#: The tests that interrupt a child process, and the launcher some CI runners are: SIGINT
#: ignored in every child, which a child inherits (Python then keeps SIG_IGN).
SIGNAL_TESTS = [
    "tests/core/test_sync_loop.py",
    "tests/crawl/test_cli.py",
    "tests/emulator/test_serve_cli.py",
]
_IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'pytest', *sys.argv[1:]])"
)


@nox.session
def signals(session: nox.Session) -> None:
    """The tests that send signals, launched with SIGINT ignored: they set what they rely on."""
    session.install("-e", ".[test]")
    session.run("python", "-c", _IGNORING_SIGINT, "-k", "SIGINT or ctrl", *SIGNAL_TESTS)


@nox.session(python=PYTHONS[-1:] or None)
def soak(session: nox.Session) -> None:
    """The long soak, load and fuzz variants (marked `soak`), with thorough Hypothesis."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "soak", *session.posargs, env={"HYPOTHESIS_PROFILE": "thorough"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and on the typing pins."""
    session.install("-e", ".[test]")
    session.run("mypy", "--strict", "audioscape_async", "tests/typing")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built with --strict: a broken link or reference fails it."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench_smoke(session: nox.Session) -> None:
    """Every benchmark at a tiny size: they still run (writes nothing)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "benchmarks", "--smoke")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks: writes benchmarks/results.md, results.json and results.png."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel into a fresh dist/, and check their metadata with twine."""
    session.install("build", "twine")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT))
    session.run("twine", "check", "--strict", *(str(path) for path in sorted(dist.iterdir())))
