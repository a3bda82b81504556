"""Crawls, in layers: each module imports only the ones listed before it.

- `_stats`: `CrawlStats`, a leaf that the pipeline and the walk write into.
- `_walk`: one walk's rules and plan (`WalkOptions`); `_pagination`: the two
  drivers that fetch its pages (steps, the streaming window).
- `_crawl`: in-memory crawls (`Crawl`) and query plans (`CrawlQuery`).
- `_files` and `_formats`: a file crawl's files and output formats;
  `_checkpoint`: its checkpoint, read back; `_file_crawl`: the crawl to a file
  that survives a kill (`AsyncClient.crawl_to_file`); `_read`: its file, read
  back into `CrawledTrack`s (`read_tracks`).

Importing this package loads the in-memory layers only; the file machinery
loads when a file crawl starts.
"""

from ._crawl import Crawl, CrawlQuery, Queries, QueryInput
from ._stats import CrawlStats, ProgressHook

__all__ = ["Crawl", "CrawlQuery", "CrawlStats", "ProgressHook", "Queries", "QueryInput"]
