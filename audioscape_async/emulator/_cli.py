"""`audioscape serve`: run the emulator from the command line.

    audioscape serve [--host 127.0.0.1] [--port 8080] [--api-key KEY ...]
                     [--admin-token TOKEN] [--tracks N | --catalog FILE] [--seed N]
                     [--rate R[/BURST]] [--burst B] [--rate-retry-after seconds|date]
                     [--fault NAME=RATE ...] [--latency S] [--retry-after S]
                     [--retry-after-format seconds|date] [--no-semantic]
    audioscape serve --openapi      # print the contract as OpenAPI 3 and exit

It prints the URL, the accepted keys and the admin token (random unless
`--admin-token` sets it) that the `/_emulator/` endpoints want as
`Authorization: Bearer <token>`.

The top-level CLI adds these arguments to its `serve` subcommand with
`add_serve_arguments` and calls `run_serve`; `python -m
audioscape_async.emulator` does the same on its own. Exit codes: 0 after
Ctrl-C (or SIGTERM) stops a running server, 130 when interrupted before
it was up, 2 for bad input, 1 when the server cannot listen.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from audioscape_async._argtypes import non_negative_int, positive_int, seconds

from . import _defaults as d
from ._app import create_app
from ._catalog import generate_catalog, load_catalog
from ._exceptions import EmulatorError
from ._faults import FAULT_NAMES, Faults
from ._openapi import openapi_document
from ._ratelimit import KeyRateLimit
from ._server import base_url, bind_socket, uvicorn_server

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: The shell's code for "stopped by SIGINT" (128 + 2).
EXIT_INTERRUPTED = 130


def _port(text: str) -> int:
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _rate(text: str) -> KeyRateLimit:
    try:
        return KeyRateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fault(text: str) -> tuple[str, float]:
    name, sep, rate_text = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=RATE, like 500=0.1, got {text!r}")
    if name not in FAULT_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown fault {name!r} (known: {', '.join(FAULT_NAMES)})"
        )
    try:
        rate = float(rate_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"fault {name}: expected a rate, got {rate_text!r}"
        ) from None
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(
            f"fault {name}: the rate must be from 0 to 1, got {rate_text}"
        )
    return name, rate


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `serve` options to `parser` (for `audioscape serve` and `python -m`)."""
    parser.add_argument(
        "--host",
        default=d.LOOPBACK_HOST,
        help=f"interface to listen on (default {d.LOOPBACK_HOST}; anything else exposes the "
        "emulator to your network)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=d.DEFAULT_PORT,
        help=f"default {d.DEFAULT_PORT}; 0 picks a free port",
    )
    parser.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help=f"a key to accept (repeatable; default: {d.DEMO_API_KEY})",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--tracks",
        type=non_negative_int,
        help=f"size of the generated catalog (default {d.DEFAULT_TRACKS:,})",
    )
    source.add_argument(
        "--catalog", type=Path, metavar="FILE", help="serve this JSONL or CSV catalog instead"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=d.DEFAULT_SEED,
        help="seed of the catalog, fault draws and request ids",
    )
    parser.add_argument(
        "--rate",
        type=_rate,
        metavar="R[/BURST]",
        help="rate limit per key: R requests a second, bursts of BURST",
    )
    parser.add_argument("--burst", type=positive_int, metavar="B", help="burst size for --rate")
    parser.add_argument(
        "--rate-retry-after",
        choices=d.RETRY_AFTER_FORMATS,
        help="give the rate limit's 429s a Retry-After, as seconds or an HTTP date "
        "(default: none, like the documented 429)",
    )
    parser.add_argument(
        "--fault",
        dest="faults",
        action="append",
        type=_fault,
        metavar="NAME=RATE",
        help=f"inject a fault at a rate in 0..1 (repeatable); names: {', '.join(FAULT_NAMES)}",
    )
    parser.add_argument(
        "--latency",
        type=seconds,
        default=d.DEFAULT_FAULT_LATENCY,
        metavar="S",
        help=f"seconds the 'latency' fault adds (default {d.DEFAULT_FAULT_LATENCY:g})",
    )
    parser.add_argument(
        "--retry-after",
        type=non_negative_int,
        default=d.DEFAULT_RETRY_AFTER,
        metavar="S",
        help="give the '429' fault a Retry-After of S seconds (default: none, like the "
        "documented 429)",
    )
    parser.add_argument(
        "--retry-after-format",
        choices=d.RETRY_AFTER_FORMATS,
        default="seconds",
        help="write the '429' fault's Retry-After as seconds (default) or an HTTP date",
    )
    parser.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="the token the /_emulator/ admin endpoints want (default: a random one, printed)",
    )
    parser.add_argument(
        "--openapi",
        action="store_true",
        help="print the emulated contract as an OpenAPI 3 document and exit",
    )
    parser.add_argument(
        "--no-semantic",
        dest="semantic",
        action="store_false",
        help="answer every search by keyword (search_method 'text')",
    )
    parser.set_defaults(serve_prog=parser.prog)


def run_serve(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run the emulator until Ctrl-C; returns the process exit code (see the module doc)."""
    stdout = out or sys.stdout
    prog = getattr(args, "serve_prog", "audioscape serve")

    def error(message: str, code: int = EXIT_USAGE) -> int:
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        return code

    if getattr(args, "openapi", False):
        print(json.dumps(openapi_document(), indent=2), file=stdout, flush=True)
        return EXIT_OK
    serving = False
    try:
        rate_limit: KeyRateLimit | None = args.rate
        if args.burst is not None:
            if rate_limit is None:
                return error("--burst needs --rate")
            rate_limit = KeyRateLimit(rate_limit.rate, args.burst)
        if args.rate_retry_after is not None:
            if rate_limit is None:
                return error("--rate-retry-after needs --rate")
            rate_limit = KeyRateLimit(
                rate_limit.rate, rate_limit.burst, retry_after=args.rate_retry_after
            )
        if args.admin_token is not None and not args.admin_token.strip():
            return error("--admin-token must not be empty")
        try:
            faults = Faults(
                dict(args.faults or []),
                latency=args.latency,
                retry_after=args.retry_after,
                retry_after_format=args.retry_after_format,
            )
        except ValueError as exc:
            return error(str(exc))
        if args.host not in d.LOOPBACK_HOSTS:
            print(
                f"WARNING: listening on {args.host} exposes the emulator, and the keys it "
                "accepts, to other machines. Use the default 127.0.0.1 unless you mean it.",
                file=sys.stderr,
                flush=True,
            )
        try:
            catalog = (
                load_catalog(args.catalog)
                if args.catalog is not None
                else generate_catalog(
                    args.tracks if args.tracks is not None else d.DEFAULT_TRACKS, args.seed
                )
            )
        except EmulatorError as exc:
            return error(str(exc))
        app = create_app(
            catalog=catalog,
            seed=args.seed,
            api_keys=tuple(args.api_keys or (d.DEMO_API_KEY,)),
            rate_limit=rate_limit,
            faults=faults,
            semantic=args.semantic,
            admin_token=args.admin_token,
        )
        try:
            sock = bind_socket(args.host, args.port)
        except OSError as exc:
            return error(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", EXIT_FAILED
            )
        port = sock.getsockname()[1]
        emulator = app.state.emulator
        print(_banner(catalog.description, args, faults, rate_limit), file=stdout)
        print(f"{d.URL_LINE_PREFIX}{base_url(args.host, port)}", file=stdout)
        for key in emulator.api_keys:
            print(f"{d.API_KEY_LINE_PREFIX}{key}", file=stdout)
        print(f"{d.ADMIN_TOKEN_LINE_PREFIX}{emulator.admin_token}", file=stdout)
        print(_exports(base_url(args.host, port), emulator.api_keys[0]), file=stdout)
        print("Press Ctrl-C to stop.", file=stdout, flush=True)
        serving = True
        with _sigterm_as_interrupt():
            uvicorn_server(app).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if not serving:
        return EXIT_INTERRUPTED
    print("Emulator stopped.", file=stdout, flush=True)
    return EXIT_OK


def _exports(url: str, api_key: str) -> str:
    """The shell line that points the SDK and the `audioscape` command at this emulator."""
    import shlex

    from audioscape_async._constants import API_KEY_ENV, BASE_URL_ENV

    return f"export {BASE_URL_ENV}={shlex.quote(url)} {API_KEY_ENV}={shlex.quote(api_key)}"


def _banner(description: str, args: Any, faults: Faults, rate_limit: KeyRateLimit | None) -> str:
    parts = [f"AudioScape emulator: {description}"]
    parts.append("semantic search" if args.semantic else "keyword search only")
    if rate_limit is not None:
        parts.append(f"rate limit {rate_limit.rate:g}/s per key, burst {rate_limit.burst}")
    if faults.rates:
        shown = ", ".join(f"{name}={rate:g}" for name, rate in faults.rates.items())
        parts.append(f"faults {shown}")
    return "; ".join(parts)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while serving, so `kill` also stops cleanly."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:
        # Not the main thread: signals are not ours to handle.
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
