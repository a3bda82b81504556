"""A missing extra: every feature behind one says the same one line, when it is asked for."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from audioscape_async import AsyncClient, AudioScapeError, InvalidParameterError, RedisBackend
from audioscape_async._crawl import _arrow
from audioscape_async._crawl._formats import choose_format
from audioscape_async._extras import EXTRAS, MissingExtraError, missing_text

ROOT = Path(__file__).parents[2]


def _line(what: str, extra: str, missing: str) -> str:
    return (
        f"{what} needs the '{extra}' extra ({missing} is not installed): "
        f"pip install 'audioscape-async[{extra}]'"
    )


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_extras_are_those_of_pyproject() -> None:
    """EXTRAS lists every extra of pyproject.toml with the modules it installs, no more."""
    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    for extra in ("test", "bench", "docs"):  # for this project's own development, not a feature
        declared.pop(extra)
    # OpenTelemetry is used when it is there and never asked for: no feature can miss it.
    declared.pop("otel")
    named = {
        extra: tuple(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0] for requirement in deps)
        for extra, deps in declared.items()
    }
    assert named == EXTRAS


def test_the_pip_line_is_spelled_in_one_place() -> None:
    """No module but _extras words the install line of an extra."""
    spelled = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "audioscape_async").rglob("*.py")
        if "pip install 'audioscape-async[" in path.read_text(encoding="utf-8")
    ]
    assert spelled == ["audioscape_async/_extras.py"]


@pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
def test_importing_the_emulator_without_its_extra_says_one_line(missing: str) -> None:
    """`from audioscape_async.emulator import create_app` names the extra, not a raw import."""
    done = _python(
        f"import sys; sys.modules[{missing!r}] = None\n"
        "from audioscape_async.emulator import create_app\n"
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == "audioscape_async._extras.MissingExtraError: " + _line(
        "audioscape_async.emulator", "emulator", missing
    )
    assert "ModuleNotFoundError" not in done.stderr
    assert "During handling" not in done.stderr


def test_the_error_is_an_sdk_error_and_an_import_error() -> None:
    """`except ImportError` and `except AudioScapeError` both catch it; `name` is the module."""
    error = MissingExtraError("RedisBackend", "redis", "redis")
    assert isinstance(error, AudioScapeError)
    assert isinstance(error, ImportError)
    assert error.name == "redis"
    assert error.extra == "redis"
    assert str(error) == _line("RedisBackend", "redis", "redis")


def test_a_redis_backend_without_redis_fails_when_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """RedisBackend(...) itself says redis is missing, not the first search that uses it."""
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingExtraError) as caught:
        RedisBackend("redis://127.0.0.1:6379/0")
    assert str(caught.value) == _line("RedisBackend", "redis", "redis")


def test_parquet_without_pyarrow_says_the_same_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crawl to a .parquet file names the parquet extra, in the shared wording."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingExtraError) as caught:
        choose_format(Path("tracks.parquet"), None)
    assert str(caught.value) == _line("Parquet output", "parquet", "pyarrow")


@pytest.mark.parametrize("missing", ["pyarrow", "pandas"])
def test_pandas_output_without_its_extra_says_the_same_line(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """to_pandas without pyarrow or pandas names the pandas extra and the missing module."""
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(MissingExtraError) as caught:
        _arrow.to_pandas([])
    assert str(caught.value) == _line("Arrow and pandas output", "pandas", missing)


def test_the_aiohttp_transport_without_aiohttp_says_the_same_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """transport="aiohttp" without aiohttp is a bad parameter, worded as every missing extra."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    with pytest.raises(InvalidParameterError) as caught:
        AsyncClient("key", transport="aiohttp")
    assert str(caught.value) == "invalid transport: " + missing_text(
        'transport="aiohttp"', "aiohttp", "aiohttp"
    )


def test_audioscape_serve_without_the_extra_says_one_line() -> None:
    """`audioscape serve` without starlette prints the one line, in the command's words."""
    done = _python(
        "import sys; sys.modules['starlette'] = None\n"
        "from audioscape_async._cli import main\n"
        "sys.exit(main(['serve']))\n"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "audioscape: error: " + _line("audioscape serve", "emulator", "starlette")
    ]
