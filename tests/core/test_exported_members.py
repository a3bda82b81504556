"""The public surface: `__all__` is pinned, so an export added or lost is a deliberate change."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import audioscape_async

PUBLIC = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AlbumSummary",
    "ArtistSummary",
    "AsyncClient",
    "AudioScapeError",
    "AuthenticationError",
    "BackendUnavailableError",
    "BadRequestError",
    "BreakerEvent",
    "CacheEvent",
    "CircuitBreaker",
    "CircuitOpenError",
    "Client",
    "Crawl",
    "CrawlFileError",
    "CrawlQuery",
    "CrawlStats",
    "CrawledTrack",
    "DeadlineExceededError",
    "DurationRange",
    "EventHook",
    "InsecureURLWarning",
    "InternalServerError",
    "InvalidParameterError",
    "NotFoundError",
    "PageEvent",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitError",
    "RateLimitEvent",
    "RedisBackend",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "RetryPolicy",
    "SearchCache",
    "SearchFilters",
    "SearchMeta",
    "SearchResponse",
    "SyncCrawl",
    "Telemetry",
    "Track",
    "WarmItem",
    "WarmReport",
    "__version__",
    "read_tracks",
]


def test_all_is_pinned() -> None:
    """`__all__` lists exactly the public names, each once."""
    assert sorted(audioscape_async.__all__) == sorted(PUBLIC)
    assert len(audioscape_async.__all__) == len(set(audioscape_async.__all__))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_importable(name: str) -> None:
    """Each name in `__all__` can be imported from the package."""
    assert getattr(audioscape_async, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from audioscape_async import {name}", namespace)
    assert namespace[name] is getattr(audioscape_async, name)


@pytest.mark.parametrize("name", [name for name in PUBLIC if name[0].isupper() and "_" not in name])
def test_every_public_class_is_documented_and_lives_in_a_private_module(name: str) -> None:
    """Each public class has a docstring and is defined in a private module."""
    member = getattr(audioscape_async, name)
    assert isinstance(member, type)
    assert member.__doc__
    assert member.__doc__.strip()
    module = member.__module__
    assert module.startswith("audioscape_async._"), module


def test_implementation_modules_are_private() -> None:
    """Every module of the package is private (_name) but the emulator and the pytest plugin."""
    names = {info.name for info in pkgutil.iter_modules(audioscape_async.__path__)}
    assert {name for name in names if not name.startswith("_")} == {"emulator", "pytest_plugin"}
    assert {"_client", "_sync", "_models", "_exceptions", "_retry", "_crawl", "_cli"} <= names
    for package in ("_crawl", "_cli"):  # subpackages of private modules, private all through
        path = importlib.import_module(f"audioscape_async.{package}").__path__
        inner = {info.name for info in pkgutil.iter_modules(path)}
        assert {name for name in inner if not name.startswith("_")} == set(), package
    crawl = importlib.import_module("audioscape_async._crawl").__path__
    assert {"_stats", "_pagination", "_crawl", "_file_crawl"} <= {
        info.name for info in pkgutil.iter_modules(crawl)
    }


def test_dir_lists_the_public_names() -> None:
    """dir(audioscape_async) shows every public name, lazily loaded ones included."""
    assert set(PUBLIC) <= set(dir(audioscape_async))


def test_unknown_attribute_is_an_attribute_error() -> None:
    """Asking the package for a name it does not have raises AttributeError."""
    with pytest.raises(AttributeError, match="NoSuchThing"):
        audioscape_async.NoSuchThing  # noqa: B018


def test_star_import_gives_exactly_all() -> None:
    """`from audioscape_async import *` binds exactly the names of `__all__`."""
    code = (
        "import sys\n"
        "before = set(dir())\n"
        "from audioscape_async import *\n"
        "print(sorted(set(dir()) - before - {'before'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == str(sorted(PUBLIC))


def test_version_is_a_string() -> None:
    """`__version__` is a version string."""
    assert isinstance(audioscape_async.__version__, str)
    assert audioscape_async.__version__.count(".") >= 1
