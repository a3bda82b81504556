"""What the command prints: the table fits the terminal; server text is never written raw."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from tests.crawl.support import QUERY, run_cli


@pytest.fixture
def hostile_server() -> Iterator[str]:
    """A real HTTP server on a free port whose answers carry terminal escapes."""
    import http.server
    import threading

    evil = "\x1b[2J\x1b]0;pwned\x07"
    page = {
        "tracks": [
            {
                "asset_id": "1",
                "name": f"Evil{evil}Name\r\nfake line",
                "artist": "A\u202eB",
                "album": "x",
                "duration": 60.0,
                "genre": "pop",
                "bpm": 120,
                "score": 0.5,
            }
        ],
        "artists": [],
        "albums": [],
        "meta": {
            "total": 1,
            "limit": 20,
            "offset": 0,
            "search_method": "semantic",
            "matched_artist": None,
        },
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            fail = b"fail" in body
            data = orjson.dumps({"error": f"bad {evil} query"} if fail else page)
            self.send_response(400 if fail else 200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/developer/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_server_text_is_never_written_raw(hostile_server: str) -> None:
    """Escapes in track names and error messages reach the terminal escaped, never raw."""
    env = {"AUDIOSCAPE_BASE_URL": hostile_server, "AUDIOSCAPE_API_KEY": "k"}
    table = run_cli("search", "anything", env=env)
    assert table.returncode == 0, table.stderr
    assert "\x1b" not in table.stdout
    assert "\u202e" not in table.stdout
    assert "Evil\\x1b[2J" in table.stdout
    assert len(table.stdout.splitlines()) == 3  # header, one row, summary: no injected line
    failed = run_cli("search", "fail", env=env)
    assert failed.returncode == 1
    assert "\x1b" not in failed.stderr
    assert "bad \\x1b[2J" in failed.stderr
    assert failed.stderr.count("\n") == 1


def test_search_table_fits_the_terminal(env: dict[str, str]) -> None:
    """With 60 columns every line of the table fits in 60."""
    result = run_cli("search", QUERY, "--limit", "10", env={**env, "COLUMNS": "60"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 12
    assert max(len(line) for line in lines) <= 60
    assert lines[0].startswith("ASSET ID")


def test_the_crawl_summary_counts_like_a_person() -> None:
    """Thousands separators in meta.total, and '1 page', not '1 pages'."""
    from audioscape_async import CrawlStats
    from audioscape_async._cli._render import crawl_summary

    stats = CrawlStats(pages=1, tracks=12, total=12690)
    line = crawl_summary(stats, "out.jsonl").splitlines()[0]
    assert "(1 page; meta.total 12,690)" in line
    stats.pages = 3
    assert "(3 pages;" in crawl_summary(stats, "out.jsonl")
