"""`python -m audioscape_async.emulator`: the `audioscape serve` command, standalone."""

from __future__ import annotations

import argparse
import sys

from ._cli import add_serve_arguments, run_serve


def main() -> int:
    """Parse the command line and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m audioscape_async.emulator",
        description="Run a local emulator of the AudioScape music search API.",
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
