"""`Client` mirrors `AsyncClient` by construction: same members, signatures and documentation."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import audioscape_async
from audioscape_async import AsyncClient, Client

#: What the async client has that the blocking one spells in its own way.
ASYNC_ONLY = {"__aenter__", "__aexit__", "aclose"}
SYNC_ONLY = {"__enter__", "__exit__", "close", "__del__"}


def _public(cls: type) -> set[str]:
    return {
        name for name in vars(cls) if not name.startswith("_") or name in ASYNC_ONLY | SYNC_ONLY
    }


def test_every_public_member_is_mirrored() -> None:
    """Every public method and property of `AsyncClient` exists on `Client`, and no more."""
    assert _public(AsyncClient) - ASYNC_ONLY == _public(Client) - SYNC_ONLY


@pytest.mark.parametrize(
    "name",
    sorted(n for n in _public(AsyncClient) - ASYNC_ONLY if callable(getattr(AsyncClient, n))),
)
def test_methods_have_the_same_signature_and_docs(name: str) -> None:
    """Parameters, defaults and docstrings match; only the return types may differ."""
    async_sig = inspect.signature(getattr(AsyncClient, name))
    sync_sig = inspect.signature(getattr(Client, name))
    assert list(async_sig.parameters.values()) == list(sync_sig.parameters.values())
    assert getattr(Client, name).__doc__ == getattr(AsyncClient, name).__doc__
    assert getattr(AsyncClient, name).__doc__


@pytest.mark.parametrize(
    "name",
    sorted(n for n in _public(AsyncClient) if isinstance(getattr(AsyncClient, n), property)),
)
def test_properties_have_the_same_docs(name: str) -> None:
    """Each property exists on both, documented the same way."""
    assert isinstance(getattr(Client, name), property)
    assert getattr(Client, name).__doc__ == getattr(AsyncClient, name).__doc__


def test_the_constructors_match() -> None:
    """`Client(...)` takes exactly `AsyncClient(...)`'s arguments, with the same defaults."""
    assert inspect.signature(Client.__init__) == inspect.signature(AsyncClient.__init__)


def test_the_sync_facade_uses_no_private_attribute_of_the_async_client() -> None:
    """`_sync.py` reaches `AsyncClient` only through its public surface."""
    source = Path(audioscape_async.__file__).with_name("_sync.py").read_text()
    tree = ast.parse(source)
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_async"
        and node.attr.startswith("_")
        and node.attr not in ("__aenter__",)
    ]
    assert private == []


def test_help_shows_the_real_documentation() -> None:
    """`help(Client.search)` shows the parameters and the examples, not a pointer."""
    doc = inspect.getdoc(Client.search)
    assert doc is not None
    assert "Raises:" in doc
    assert "deadline" in doc
