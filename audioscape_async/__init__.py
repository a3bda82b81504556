"""audioscape-async: the async-first Python SDK for the AudioScape music search API.

```python
from audioscape_async import AsyncClient

async with AsyncClient() as client:
    page = await client.search("dark cinematic boss tension", limit=1)
```

`Client` is the same thing for blocking code. Everything public is here;
every other module is private.
"""

from ._client import AsyncClient, InsecureURLWarning
from ._constants import DEFAULT_BASE_URL
from ._crawl import Crawl, CrawlStats
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AudioScapeError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidParameterError,
    NotFoundError,
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
from ._ratelimit import RateLimit
from ._retry import RetryPolicy
from ._sync import Client, SyncCrawl
from ._version import __version__

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
    "BadRequestError",
    "Client",
    "Crawl",
    "CrawlStats",
    "DurationRange",
    "InsecureURLWarning",
    "InternalServerError",
    "InvalidParameterError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitError",
    "RetryPolicy",
    "SearchFilters",
    "SearchMeta",
    "SearchResponse",
    "SyncCrawl",
    "Track",
    "__version__",
]
