"""The client side of the memory benchmark, in a fresh process: prints JSON with its RSS.

python -m benchmarks._memory_child crawl URL OUT CONCURRENCY
python -m benchmarks._memory_child responses {sdk,pydantic,msgspec} COUNT PAGE_SIZE
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import time
from pathlib import Path


def _rss_mb() -> float:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def crawl(url: str, out: str, concurrency: int) -> dict[str, float]:
    from audioscape_async import AsyncClient

    from ._server import API_KEY

    async def main() -> dict[str, float]:
        async with AsyncClient(API_KEY, base_url=url) as client:
            await client.search("warm up", limit=1)
            before = _rss_mb()
            start = time.perf_counter()
            stats = await client.crawl_to_file(
                "everything", out, concurrency=concurrency, overwrite=True
            )
            return {
                "baseline_mb": before,
                "seconds": time.perf_counter() - start,
                "tracks": stats.tracks,
                "pages": stats.pages,
            }

    result = asyncio.run(main())
    result["peak_mb"] = _peak_mb()
    result["bytes_written"] = Path(out).stat().st_size
    return result


def responses(kind: str, count: int, page_size: int) -> dict[str, float]:
    from ._server import _Pages

    pages = _Pages(count * page_size)
    if kind == "sdk":
        from audioscape_async._decode import decode_search_response as decode
    elif kind == "pydantic":
        from ._pydantic_models import SearchResponse

        decode = SearchResponse.model_validate_json
    else:
        import msgspec

        from ._msgspec_models import SearchResponse as Struct

        decode = msgspec.json.Decoder(Struct).decode
    body = pages.answer(b'{"limit": 1}').split(b"\r\n\r\n", 1)[1]
    decode(body)
    gc.collect()
    before = _rss_mb()
    kept = []
    for i in range(count):
        request = b'{"offset": %d, "limit": %d}' % (i * page_size, page_size)
        kept.append(decode(pages.answer(request).split(b"\r\n\r\n", 1)[1]))
    gc.collect()
    after = _rss_mb()
    assert len(kept) == count
    return {"baseline_mb": before, "kept_mb": after - before, "peak_mb": _peak_mb()}


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "crawl":
        print(json.dumps(crawl(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        print(json.dumps(responses(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
