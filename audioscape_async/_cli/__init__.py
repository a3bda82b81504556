"""The `audioscape` command: search, crawl, and serve the local emulator.

Bad input gets one line on stderr and a non-zero exit, never a traceback:
2 for a usage error, 1 for an API or file error, 130 after Ctrl-C. Every such
line has one style, ``audioscape: error: WHERE: RULE, got VALUE``, naming the
option (not the Python parameter behind it): the SDK's messages name
parameters (``overwrite=True``), and this module says them as the flags
behind them (``--force``). Text that comes from the server (track names, error
messages) is escaped before it reaches a terminal: a control character is
printed as its escape (``\\x1b``), never sent raw.

Here: `main` and the mapping of errors to exit statuses. `_parser` holds the
options, `_commands` what `search` and `crawl` do, `_render` what they print
and `_progress` the crawl's progress thread.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TextIO

import anyio

from audioscape_async._exceptions import AudioScapeError, InvalidParameterError
from audioscape_async._logs import printable

from ._commands import UsageError, crawl, search
from ._parser import (
    EXIT_API_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    OPTION_NAMES,
    build_parser,
)
from ._render import say_error, say_warning

__all__ = ["main", "run"]

#: A parameter setting a library message suggests, such as ``resume=True`` or ``format=``.
_SETTING = re.compile(r"\b([a-z_]+)=(?:True\b|(?=[\s)]|$))")
#: Library advice that has no flag behind it, in the command's words: a shell user sets
#: the key in the environment (no flag takes it: it would show in `ps`), and the proxy too.
_ADVICE = (
    (re.compile(r"pass api_key=\.\.\. or set the (\S+) environment variable"), r"set \1"),
    (re.compile(r"or pass trust_env=False"), "or unset the proxy environment variables"),
)


def _fail(message: str, status: int) -> int:
    say_error(message)
    return status


def _in_flags(message: str) -> str:
    """A library message in the command's words: ``overwrite=True`` is ``--force``."""
    for advice, words in _ADVICE:
        message = advice.sub(words, message)
    return _SETTING.sub(lambda m: OPTION_NAMES.get(m[1], m[0]), message)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """`warnings.showwarning` for the command: one line in its words, no file and line."""
    say_warning(_in_flags(str(message)))


def _parameter_message(error: InvalidParameterError) -> str:
    """An SDK parameter error in the command's words: the option, then the rule."""
    base = error.parameter.split("[", 1)[0]  # "filters.genres[0]" is a --genre
    option = OPTION_NAMES.get(base, error.parameter)
    prefix = f"invalid {error.parameter}: "
    rule = error.message[len(prefix) :] if error.message.startswith(prefix) else error.message
    return f"{option}: {_in_flags(rule)}"


def _interrupted(args: argparse.Namespace) -> int:
    out = getattr(args, "out", None)
    if args.command == "crawl" and out not in (None, "-"):
        checkpoint = Path(f"{out}.checkpoint")
        if checkpoint.exists():
            print(
                f"\ninterrupted; progress is saved in {printable(str(checkpoint))}: run the same "
                f"command with --resume to finish {printable(out)}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    print("\ninterrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    A warning (the SDK's, or a library's under it) is one ``audioscape: warning:``
    line: a shell user has no use for the Python file and line it was raised at.
    """
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # a usage error (said already), --help or --version
        return int(exit.code or 0) if not isinstance(exit.code, str) else EXIT_USAGE
    if args.command == "serve":
        missing = getattr(args, "emulator_missing", None)
        if missing:
            return _fail(missing, EXIT_USAGE)
        from audioscape_async.emulator._cli import run_serve

        return run_serve(args)
    commands: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
        "search": search,
        "crawl": crawl,
    }
    try:
        anyio.run(commands[args.command], args)
        return EXIT_OK
    except KeyboardInterrupt:
        return _interrupted(args)
    except UsageError as error:
        return _fail(str(error), EXIT_USAGE)
    except InvalidParameterError as error:
        return _fail(_parameter_message(error), EXIT_USAGE)
    except AudioScapeError as error:
        return _fail(_in_flags(str(error)), EXIT_API_ERROR)
    except BrokenPipeError:
        raise
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or error}{where}", EXIT_API_ERROR)


def run() -> None:
    """The console-script entry point."""
    # Keep a broken pipe (| head) quiet, the way Unix tools are.
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = EXIT_OK
    except KeyboardInterrupt:  # between the event loop's end and here
        status = EXIT_INTERRUPTED
    raise SystemExit(status)
