"""The `audioscape` command speaks to a shell user: no Python warning, no Python API words."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tokenize
import warnings
from pathlib import Path

import pytest

import audioscape_async._cli as cli
from audioscape_async._cli import _in_flags, main
from tests.core.test_proxy import ForwardProxy
from tests.crawl.support import QUERY, run_cli
from tests.reliability.servers import RawServer, answer

PACKAGE = Path(cli.__file__).parents[1]
#: Settings the library suggests in messages that never reach the command.
NOT_THE_COMMANDS = {
    "adaptive=True": "RateLimit's deprecation; the command says --adaptive's in its own words",
    "partial=True": "read_crawl's advice: no command reads a crawl's files",
}


#: A setting a message suggests: ``resume=True``, ``api_key=...``, ``trust_env=False``.
SETTING = re.compile(r"\b[a-z_]+=(?:True|False|None|\.\.\.)")


def _messages_with_settings() -> list[str]:
    """Every string of the SDK (not the emulator) that suggests a setting, as written."""
    found: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        if "emulator" in path.parts or path.parent.name == "_cli":
            continue
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        for token in tokens:
            if token.type != tokenize.STRING or token.string.startswith(('"""', 'r"""')):
                continue
            settings = set(SETTING.findall(token.string)) - set(NOT_THE_COMMANDS)
            if settings:
                found.append(token.string)
    return found


def test_every_setting_a_message_suggests_is_said_as_the_command_would() -> None:
    """Each `resume=True`, `api_key=...`, `trust_env=False` of the SDK's messages has CLI words."""
    messages = _messages_with_settings()
    assert len(messages) >= 5, "the scan found too little: it is broken"
    for message in messages:
        assert not SETTING.search(_in_flags(message)), (message, _in_flags(message))
    for message, expected in [
        (
            "no API key: pass api_key=... or set the AUDIOSCAPE_API_KEY environment variable",
            "no API key: set AUDIOSCAPE_API_KEY",
        ),
        (
            "it already exists; pass overwrite=True to replace it, or resume=True to finish",
            "it already exists; pass --force to replace it, or --resume to finish",
        ),
        (
            "fix it, list the host in NO_PROXY, or pass trust_env=False",
            "fix it, list the host in NO_PROXY, or unset the proxy environment variables",
        ),
    ]:
        assert _in_flags(message) == expected


def test_a_missing_key_names_the_variable_and_no_parameter() -> None:
    """Without a key: one line naming AUDIOSCAPE_API_KEY, and no `api_key=` (there is no flag)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIOSCAPE_")}
    result = subprocess.run(
        [sys.executable, "-m", "audioscape_async", "search", QUERY],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == "audioscape: error: no API key: set AUDIOSCAPE_API_KEY\n"


def test_bare_audioscape_prints_the_usage_line_and_the_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`audioscape` alone: the usage line, then one error line listing the commands; exit 2."""
    assert main([]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: audioscape ")
    assert err[1:] == [
        "audioscape: error: no command given: choose one of search, crawl, serve "
        "(audioscape COMMAND --help)"
    ]


def test_a_warning_is_one_line_in_the_commands_style(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A warning raised under a command is `audioscape: warning: ...`, never file:line: Warning."""

    async def warns(_args: object) -> None:
        warnings.warn("slow down (pass resume=True)", RuntimeWarning, stacklevel=1)

    monkeypatch.setattr(cli, "search", warns)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as outside pytest, where warnings are shown
        assert main(["search", "x"]) == 0
    assert capsys.readouterr().err == "audioscape: warning: slow down (pass --resume)\n"
    assert warnings.showwarning is not cli._show_warning  # put back when the command ends


def test_the_insecure_url_warning_reaches_a_shell_as_one_line() -> None:
    """Plain http through an environment proxy, in a real process: one line, no Python."""
    proxy, api = ForwardProxy(), RawServer(answer())
    try:
        env = {
            "AUDIOSCAPE_BASE_URL": api.url(),
            "AUDIOSCAPE_API_KEY": "key",
            "HTTP_PROXY": proxy.url,
            "NO_PROXY": "",
            "no_proxy": "",
        }
        result = run_cli("search", QUERY, "--limit", "1", env=env)
    finally:
        proxy.close()
        api.close()
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"audioscape: warning: base_url {api.url()!r} is plain http through a proxy set "
        "in the environment: the API key crosses the network unencrypted; use https"
    ]
