"""`_logs`: `AUDIOSCAPE_LOG` turns on the SDK's own handler; DEBUG tells each attempt, never the
key; `printable` escapes what would forge a line.

That every error message and log line goes through `printable` is `test_log_injection.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audioscape_async._logs import printable
from tests.helpers import API_KEY
from tests.reliability.servers import RawServer, answer

SCRIPT = """
import sys
from audioscape_async import Client
with Client(sys.argv[1], base_url=sys.argv[2], max_retries=0) as client:
    client.search("calm piano")
"""


def _env(level: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AUDIOSCAPE_LOG"}
    if level is not None:
        env["AUDIOSCAPE_LOG"] = level
    return env


def _run(level: str | None, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, API_KEY, url],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(level),
        check=True,
    )


def test_debug_logs_one_line_per_attempt_without_the_key() -> None:
    """AUDIOSCAPE_LOG=debug prints method, path, status, elapsed, attempt and request id."""
    with RawServer(answer()) as server:
        done = _run("debug", server.url())
    lines = [line for line in done.stderr.splitlines() if "audioscape_async" in line]
    assert len(lines) == 1, done.stderr
    assert "DEBUG" in lines[0]
    assert "POST /developer/v1/search -> 200" in lines[0]
    assert "attempt 1" in lines[0]
    assert "req_raw" in lines[0]
    assert API_KEY not in done.stderr


def test_info_and_no_variable() -> None:
    """AUDIOSCAPE_LOG=info hides the attempt lines; without the variable nothing is printed."""
    with RawServer(answer()) as server:
        info = _run("info", server.url())
        quiet = _run(None, server.url())
        odd = _run("loud", server.url())
    assert "audioscape_async" not in info.stderr
    assert quiet.stderr == ""
    assert "AUDIOSCAPE_LOG='loud' is not one of" in odd.stderr


#: Configures twice (two clients do), then shows the logger's level and handlers.
CONFIGURE = """
import logging, sys
if sys.argv[1] != "-":
    logging.getLogger("audioscape_async").setLevel(sys.argv[1])  # the app's own choice
from audioscape_async._logs import configure_from_env, logger
configure_from_env()
configure_from_env()
handlers = [f"{type(h).__name__}:{logging.getLevelName(h.level)}" for h in logger.handlers]
print(logging.getLevelName(logger.level), *handlers)
"""


@pytest.mark.parametrize(
    ("variable", "app_level", "shown"),
    [
        (None, "-", "NOTSET NullHandler:NOTSET"),
        (" DEBUG ", "-", "DEBUG NullHandler:NOTSET StreamHandler:DEBUG"),
        ("info", "-", "INFO NullHandler:NOTSET StreamHandler:INFO"),
        ("info", "WARNING", "INFO NullHandler:NOTSET StreamHandler:INFO"),
        ("info", "DEBUG", "DEBUG NullHandler:NOTSET StreamHandler:INFO"),
        ("loud", "-", "NOTSET NullHandler:NOTSET"),
    ],
    ids=["unset", "debug-any-case", "info", "app-warning", "app-debug", "unknown"],
)
def test_one_handler_at_the_level_asked_never_quieting_the_app(
    variable: str | None, app_level: str, shown: str
) -> None:
    """However often a client is made, one stderr handler at the asked level (any case, spaces
    aside); the logger's level is lowered to it, never raised over the app's own."""
    done = subprocess.run(
        [sys.executable, "-c", CONFIGURE, app_level],
        capture_output=True, text=True, timeout=30, env=_env(variable), check=True,
    )  # fmt: skip
    assert done.stdout.strip() == shown
    if variable == "loud":
        assert done.stderr.count("is not one of: debug, info; ignored") == 1
    else:
        assert done.stderr == ""


def test_an_unknown_value_is_quoted_cut_short() -> None:
    """A long unknown value is shown cut at 20 characters, quoted."""
    done = subprocess.run(
        [sys.executable, "-c", CONFIGURE, "-"],
        capture_output=True, text=True, timeout=30, env=_env("x" * 30 + "\n"), check=True,
    )  # fmt: skip
    assert f"AUDIOSCAPE_LOG={'x' * 20!r} is not one of" in done.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nforged line", "a\\nforged line"),
        ("\r\t", "\\r\\t"),
        ("\x1b[2Jclear", "\\x1b[2Jclear"),
        ("\u202eevil", "\\u202eevil"),
        ("\x00\x7f\x85", "\\x00\\x7f\\x85"),
        ("line\u2028separator", "line\\u2028separator"),
    ],
    ids=["newline", "cr-tab", "ansi", "bidi", "nul-del-nel", "line-separator"],
)
def test_printable_escapes_each_control_and_format_character(text: str, shown: str) -> None:
    """Each such character is written as its Python escape; the rest of the text is kept."""
    assert printable(text) == shown


def test_printable_text_comes_back_as_it_is() -> None:
    """Text with nothing to escape (accents and emoji are printable) is returned itself."""
    text = "Épica 🎵 req_0042 \\n"
    assert printable(text) is text


@given(st.text())
def test_whatever_the_text_the_result_is_printable(text: str) -> None:
    """No character of any text survives that could end a line or steer a terminal."""
    shown = printable(text)
    assert shown.isprintable()
    assert len(shown) >= len(text)
