"""In-memory crawls: every track of a search, each once, with live statistics; query plans.

`Crawl` is what `AsyncClient.crawl` returns: the walk of `_pagination` (in
steps, or as a streaming window inside ``async with``) with the statistics of
`_stats`. `CrawlQuery` and `plan_queries` say what a many-query crawl asks
for; the crawl to a file that survives a kill is `_file_crawl`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from audioscape_async._exceptions import AudioScapeError, InvalidParameterError
from audioscape_async._models import SearchFilters, Track, coerce_filters

from ._stats import CrawlStats, ProgressHook

if TYPE_CHECKING:
    from audioscape_async._hooks import WalkWatch

    from ._pagination import FetchPage, WalkOptions

__all__ = ["Crawl", "CrawlQuery", "Queries", "QueryInput", "plan_queries"]


class Crawl:
    """Every track of a search, each `asset_id` once, with live `stats`.

    Open it with ``async with`` for the streaming window: `concurrency`
    requests always in flight, each page delivered as soon as every page
    before it was, and nothing left running when the block ends:

    ```python
    async with client.crawl("chill lo-fi beats", concurrency=8) as crawl:
        async for track in crawl:
            ...
    print(crawl.stats.to_dict())
    ```

    A plain ``async for track in client.crawl(...)`` works too; it fetches in
    steps (a step waits for its slowest page before delivering).
    """

    def __init__(
        self,
        fetch: FetchPage,
        options: WalkOptions,
        stats: CrawlStats,
        on_progress: ProgressHook | None = None,
        *,
        seen: set[str] | None = None,
        delivered: int = 0,
        watch: WalkWatch | None = None,
    ) -> None:
        self._fetch = fetch
        self._watch = watch
        self._options = options
        self.stats = stats
        self._on_progress = on_progress
        self._seen = seen
        self._delivered = delivered
        self._exit: AsyncExitStack | None = None
        self._ended = False  # its ``async with`` block is over: the crawl is spent
        self._window: AsyncIterator[tuple[list[Track], int]] | None = None
        self._plain: AsyncGenerator[tuple[list[Track], int], None] | None = None
        self._iterators: list[AsyncGenerator[Any, None]] = []

    async def __aenter__(self) -> Crawl:
        if self._exit is not None or self._plain is not None or self._ended:
            raise AudioScapeError("this crawl has started already; a crawl runs once")
        from ._pagination import stream_tracks

        stack = AsyncExitStack()
        self._window = await stack.enter_async_context(
            stream_tracks(
                self._fetch,
                self._options,
                stats=self.stats,
                seen=self._seen,
                delivered=self._delivered,
                watch=self._watch,
            )
        )
        self._exit = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit, self._window = self._exit, None, None
        self._ended = True
        try:
            await self._close_iterators()
        finally:
            if self.stats.finished is None:
                self.stats.finished = time.monotonic()
            if stack is not None:
                # Cancels the requests in flight and waits for them to be gone.
                await stack.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> AsyncGenerator[Track, None]:
        tracks = self._tracks()
        # Kept for aclose(): after a `break`, the loop's iterator is still suspended
        # at a yield, and left to the collector trio warns about it.
        self._iterators.append(tracks)
        return tracks

    async def _tracks(self) -> AsyncGenerator[Track, None]:
        batches = self.batches()
        async with aclosing(batches):
            async for batch in batches:
                for track in batch:
                    yield track

    def _source(self) -> AsyncIterator[tuple[list[Track], int]]:
        if self._window is not None:
            return self._window
        if self._ended:
            raise AudioScapeError("this crawl's async with block has ended; a crawl runs once")
        if self._plain is None:
            from ._pagination import walk_tracks

            self._plain = walk_tracks(
                self._fetch,
                self._options,
                stats=self.stats,
                seen=self._seen,
                delivered=self._delivered,
                watch=self._watch,
            )
        return self._plain

    async def batches(self) -> AsyncGenerator[list[Track], None]:
        """The crawl page by page: each page's new tracks (the sync facade's unit)."""
        source = self._source()
        try:
            async for batch, _ in source:
                if self._on_progress is not None:
                    self._on_progress(self.stats)
                yield batch
        finally:
            self.stats.finished = time.monotonic()
            if source is self._plain:
                await self._plain.aclose()

    def arrow_batches(self, batch_size: int = 10_000) -> AsyncGenerator[Any, None]:
        """The crawl as `pyarrow.RecordBatch`es of at most `batch_size` tracks each.

        ```python
        async with client.crawl("sad piano", concurrency=8) as crawl:
            async for batch in crawl.arrow_batches():
                table_parts.append(batch)
        ```

        Memory holds one batch at a time. Needs pyarrow (the ``pandas`` extra).
        """
        from . import _arrow

        size = _arrow.check_batch_size(batch_size)
        _arrow.pyarrow_module()
        record_batches = _arrow.batches_async(self.batches(), size)
        self._iterators.append(record_batches)  # closed with the crawl, as `__aiter__`'s
        return record_batches

    async def to_pandas(self) -> Any:
        """The whole crawl as a pandas DataFrame, one row per track (the ``pandas`` extra)."""
        from . import _arrow

        _arrow.pyarrow_module()
        record_batches = [batch async for batch in self.arrow_batches()]
        return _arrow.to_pandas(record_batches)

    async def _close_iterators(self) -> None:
        iterators, self._iterators = self._iterators, []
        for tracks in iterators:
            await tracks.aclose()

    async def aclose(self) -> None:
        """Stop the crawl early; nothing keeps running (an ``async with`` crawl: at its end)."""
        await self._close_iterators()
        if self._plain is not None:
            await self._plain.aclose()


@attrs.frozen
class CrawlQuery:
    """One query of a many-query crawl, with filters of its own.

    ```python
    plan = [CrawlQuery("chill lo-fi beats", filters={"genres": ["lo-fi"]}),
            CrawlQuery("sad piano")]
    await client.crawl_to_file(plan, "moods.jsonl")
    ```

    Without `filters` the query takes the `filters` given to `crawl_to_file`.
    """

    query: str
    filters: SearchFilters | Mapping[str, Any] | None = None


#: One query as `crawl_to_file` takes it.
QueryInput: TypeAlias = "str | CrawlQuery | Mapping[str, Any]"
#: What `crawl_to_file` takes as its queries: one, or a sequence of them.
Queries: TypeAlias = "QueryInput | Sequence[QueryInput]"


def _filters_json(filters: object) -> dict[str, object] | None:
    checked = coerce_filters(filters)  # type: ignore[arg-type]
    return checked.to_json() if checked is not None else None


def plan_queries(queries: Queries, filters: object) -> list[tuple[str, dict[str, object] | None]]:
    """Every query of a crawl, checked, as ``(query, filters JSON)``."""
    from audioscape_async._validation import check_query, reject_unknown_keys

    default = _filters_json(filters)
    items = [queries] if isinstance(queries, (str, CrawlQuery, Mapping)) else list(queries)
    if not items:
        raise InvalidParameterError("query", "give at least one query")
    plan: list[tuple[str, dict[str, object] | None]] = []
    for item in items:
        if isinstance(item, str):
            plan.append((check_query(item), default))
            continue
        if isinstance(item, Mapping):
            reject_unknown_keys("query", item, ("query", "filters"))
            item = CrawlQuery(item.get("query"), item.get("filters"))  # type: ignore[arg-type]
        if not isinstance(item, CrawlQuery):
            raise InvalidParameterError(
                "query",
                f"must be a str, a CrawlQuery or a mapping, got {type(item).__name__}",
            )
        own = _filters_json(item.filters) if item.filters is not None else default
        plan.append((check_query(item.query), own))
    return plan
