"""`AsyncClient.warm`: load the cache before the first player arrives.

Each item is one search (a query string, or a mapping with ``query`` and any
of ``limit``, ``offset``, ``filters``), all checked before anything is sent.
They run through the client's cache stage, at most `concurrency` at once, so
a warm-up is what players' first searches would have been: an entry already
fresh is not fetched again, identical items share one call, and with a
`RedisBackend` the fleet elects one fetcher per search (`_cache`), so four
workers warming three zones make three upstream calls. The report says, per
item, where its page came from, and which items failed (with their
`AudioScapeError`); a failure never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._constants import DEFAULT_LIMIT, DEFAULT_OFFSET
from ._exceptions import AudioScapeError, InvalidParameterError
from ._models import check_search, search_body

if TYPE_CHECKING:
    from ._options import CallOptions
    from ._pipeline import Pipeline

__all__ = ["WarmItem", "WarmReport", "warm"]

#: What an item of `warm` may hold besides its query.
_KEYS = ("query", "limit", "offset", "filters")

#: Where a warmed page came from: this process's call, or the cache (this process's,
#: the fleet's, or a call another caller or process made meanwhile).
Source = Literal["upstream", "shared"]


@attrs.frozen
class WarmItem:
    """One search of a warm-up and its outcome: `source` if it loaded, `error` if not."""

    query: str
    limit: int = DEFAULT_LIMIT
    offset: int = DEFAULT_OFFSET
    filters: dict[str, object] | None = None
    #: "upstream": this process called the API; "shared": the cache had it, or
    #: another caller (or, with a `RedisBackend`, another process) fetched it.
    source: Source | None = None
    error: AudioScapeError | None = None
    request_id: str | None = None


@attrs.frozen
class WarmReport:
    """What `AsyncClient.warm` loaded, from where, and what failed.

    ``report.ok`` is True when nothing failed; `loaded` and `failed` list the
    items in the order given.
    """

    loaded: tuple[WarmItem, ...]
    failed: tuple[WarmItem, ...]

    @property
    def ok(self) -> bool:
        """Whether every item loaded."""
        return not self.failed

    @property
    def upstream(self) -> int:
        """How many pages this process fetched from the API."""
        return sum(1 for item in self.loaded if item.source == "upstream")

    @property
    def shared(self) -> int:
        """How many pages the cache (this process's or the fleet's) already had or shared."""
        return sum(1 for item in self.loaded if item.source == "shared")

    def __repr__(self) -> str:
        return (
            f"WarmReport(loaded={len(self.loaded)} (upstream {self.upstream}, "
            f"shared {self.shared}), failed={len(self.failed)})"
        )


def warm_items(queries: object) -> list[WarmItem]:
    """The items of a warm-up, each checked; an `InvalidParameterError` names the bad one."""
    if isinstance(queries, (str, bytes, Mapping)) or not isinstance(queries, Iterable):
        raise InvalidParameterError(
            "queries",
            f"must be a list of queries (strings or mappings), got {type(queries).__name__}",
        )
    items = []
    for index, raw in enumerate(queries):
        name = f"queries[{index}]"
        fields: dict[str, Any]
        if isinstance(raw, str):
            fields = {"query": raw}
        elif isinstance(raw, Mapping):
            unknown = sorted(str(key) for key in raw if key not in _KEYS)
            if unknown:
                raise InvalidParameterError(
                    name, f"unknown key {unknown[0]!r}; an item may hold {', '.join(_KEYS)}"
                )
            if "query" not in raw:
                raise InvalidParameterError(name, "has no 'query'")
            fields = dict(raw)
        else:
            raise InvalidParameterError(
                name, f"must be a query string or a mapping, got {type(raw).__name__}"
            )
        item = WarmItem(**fields)
        try:
            filters = check_search(item.query, item.limit, item.offset, item.filters)
        except InvalidParameterError as error:
            rule = str(error).removeprefix(f"invalid {error.parameter}: ")
            raise InvalidParameterError(f"{name}.{error.parameter}", rule) from None
        items.append(attrs.evolve(item, filters=filters))
    return items


async def warm(
    pipeline: Pipeline, items: list[WarmItem], concurrency: int, options: CallOptions
) -> WarmReport:
    """Run the searches of `items` through the cache stage; see the module docstring."""
    import anyio

    outcomes: list[WarmItem | None] = [None] * len(items)
    # `concurrency` workers take the items in turn: a task per worker, not per item
    # (a task per item held ~4 KiB each while it waited: 200 MiB for 50,000 items).
    queue = iter(enumerate(items))

    async def worker() -> None:
        for index, item in queue:
            outcomes[index] = await load(item)

    async def load(item: WarmItem) -> WarmItem:
        body = search_body(item.query, item.limit, item.offset, item.filters)
        key = pipeline.cache_key(item.query, item.limit, item.offset, item.filters)
        try:
            page = await pipeline.search(body, options, cache_key=key)
        except AudioScapeError as error:
            return attrs.evolve(item, error=error)
        source: Source = "upstream" if page.cache_status == "miss" else "shared"
        return attrs.evolve(item, source=source, request_id=page.request_id)

    async with anyio.create_task_group() as group:
        for _ in range(min(concurrency, len(items))):
            group.start_soon(worker)
    done = [outcome for outcome in outcomes if outcome is not None]
    return WarmReport(
        loaded=tuple(item for item in done if item.error is None),
        failed=tuple(item for item in done if item.error is not None),
    )
