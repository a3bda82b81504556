"""audioscape-async: the async-first Python SDK for the AudioScape music search API.

```python
from audioscape_async import AsyncClient

async with AsyncClient() as client:
    page = await client.search("dark cinematic boss tension", limit=1)
```

`Client` is the same thing for blocking code. Everything public is here;
every other module is private.
"""

import importlib
from typing import TYPE_CHECKING

from ._client import AsyncClient, InsecureURLWarning
from ._constants import DEFAULT_BASE_URL
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AudioScapeError,
    AuthenticationError,
    BackendUnavailableError,
    BadRequestError,
    CircuitOpenError,
    CrawlFileError,
    DeadlineExceededError,
    InternalServerError,
    InvalidParameterError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
)
from ._models import (
    AlbumSummary,
    ArtistSummary,
    DurationRange,
    SearchFilters,
    SearchMeta,
    SearchResponse,
    Track,
)
from ._retry import RetryPolicy
from ._version import __version__

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker
    from ._cache import SearchCache
    from ._crawl import Crawl, CrawlQuery, CrawlStats
    from ._crawl._read import CrawledTrack, read_tracks
    from ._hooks import (
        BreakerEvent,
        CacheEvent,
        EventHook,
        PageEvent,
        RateLimitEvent,
        RequestEvent,
        ResponseEvent,
        RetryEvent,
    )
    from ._ratelimit import RateLimit
    from ._redis import RedisBackend
    from ._sync import Client, SyncCrawl
    from ._telemetry import Telemetry
    from ._warm import WarmItem, WarmReport

# Imported on first use, so that `import audioscape_async` costs little more
# than `import httpx` (see benchmarks/): the sync facade needs anyio's thread
# portal and the crawl machinery needs more than a plain search does.
_LAZY = {
    "Client": "._sync",
    "SyncCrawl": "._sync",
    "Crawl": "._crawl",
    "CrawlQuery": "._crawl",
    "CrawlStats": "._crawl",
    "CrawledTrack": "._crawl._read",
    "read_tracks": "._crawl._read",
    "RateLimit": "._ratelimit",
    "SearchCache": "._cache",
    "CircuitBreaker": "._breaker",
    "RedisBackend": "._redis",
    "WarmItem": "._warm",
    "WarmReport": "._warm",
    "BreakerEvent": "._hooks",
    "CacheEvent": "._hooks",
    "EventHook": "._hooks",
    "PageEvent": "._hooks",
    "RateLimitEvent": "._hooks",
    "RequestEvent": "._hooks",
    "ResponseEvent": "._hooks",
    "RetryEvent": "._hooks",
    "Telemetry": "._telemetry",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
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
