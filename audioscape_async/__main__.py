"""`python -m audioscape_async` is the `audioscape` command."""

from ._cli import run

run()
