"""Crawl progress: a bar that fits and redraws on time, lines that end once, rate waits shown."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from audioscape_async import Client
from audioscape_async.emulator import EmulatorServer, Faults
from tests.crawl.support import QUERY, run_cli


def _run_in_terminal(args: list[str], env: dict[str, str], columns: int) -> tuple[int, str]:
    """Run the command, stderr on a pseudo-terminal `columns` wide; return status and stderr."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    clean = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-m", "audioscape_async", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**clean, **env},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    # The terminal turns each "\n" into "\r\n"; give the program's own bytes back.
    return process.wait(timeout=60), b"".join(chunks).decode().replace("\r\n", "\n")


def test_progress_bar_fits_redraws_on_time_and_ends_once(
    env: dict[str, str], cli_server: EmulatorServer, tmp_path: Path
) -> None:
    """On a 50-column terminal the bar fits, redraws while a page is slow, and ends once at 100%."""
    out = tmp_path / "t.jsonl"
    cli_server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.8))
    status, err = _run_in_terminal(
        ["crawl", QUERY, "--out", str(out), "--max-items", "200", "--concurrency", "1"], env, 50
    )
    assert status == 0, err
    draws = [draw.replace("\x1b[K", "") for draw in err.split("\r") if draw]
    # Two pages of 0.8 s each: a bar drawn only per page would be drawn twice.
    assert len(draws) >= 5
    assert all(len(draw.rstrip("\n")) < 50 for draw in draws)
    assert err.endswith("\n")
    assert err.count("\n") == 1
    assert "200/200 tracks (100%)" in draws[-1]


def test_resumed_progress_counts_the_earlier_tracks(
    env: dict[str, str], cli_server: EmulatorServer, tmp_path: Path
) -> None:
    """A resumed crawl's bar counts what was written before and ends at 100%, not short of it."""
    out = tmp_path / "t.jsonl"

    class Stop(Exception):
        pass

    def stop(stats: object) -> None:
        raise Stop

    with Client(cli_server.api_key, base_url=cli_server.url) as client, contextlib.suppress(Stop):
        client.crawl_to_file(QUERY, out, max_items=500, on_progress=stop)
    status, err = _run_in_terminal(
        ["crawl", QUERY, "--out", str(out), "--max-items", "500", "--resume"], env, 100
    )
    assert status == 0, err
    assert "500/500 tracks (100%)" in err.split("\r")[-1]


def test_waiting_for_the_rate_limit_is_shown() -> None:
    """While a request waits for the rate limit the progress line says so."""
    from audioscape_async import CrawlStats
    from audioscape_async._cli._progress import Progress

    stats = CrawlStats(tracks=10, total=100)
    progress = Progress("bar", sys.stderr)
    with stats.rate_wait():
        waiting = progress.render(stats, 80)
    assert "waiting for the rate limit" in waiting
    assert "waiting" not in progress.render(stats, 80)
    assert len(progress.render(stats, 30)) < 30
    stats.queries = [CrawlStats(tracks=5, pages=1), CrawlStats(), CrawlStats()]
    assert "query 1/3" in progress.render(stats, 200)
    stats.queries[1].pages = 1
    assert "query 2/3" in progress.render(stats, 200)


def test_lines_progress_prints_its_last_line_once(env: dict[str, str], tmp_path: Path) -> None:
    """Off a terminal, progress is plain lines, and the last one is not printed twice."""
    out = tmp_path / "t.jsonl"
    result = run_cli("crawl", QUERY, "--out", str(out), "--max-items", "300", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines
    assert "300/300 tracks (100%)" in lines[-1]
    assert len(lines) == len(set(lines))


def test_a_multi_query_crawl_shows_the_totals_known_so_far() -> None:
    """Before every query has started: the tracks against the totals known, the walking
    query's own share; once every total is known, the whole with a percentage and an ETA."""
    from audioscape_async import CrawlStats
    from audioscape_async._cli._progress import Progress

    progress = Progress("lines", sys.stderr, max_items=500)
    stats = CrawlStats(tracks=750, pages=8)
    stats.queries = [
        CrawlStats(tracks=500, total=9_000, pages=5),
        CrawlStats(tracks=250, total=300, pages=3),
        CrawlStats(),
    ]
    line = progress.render(stats, 200)
    assert "750 tracks" in line
    assert "750/800 of the 2/3 totals known" in line  # 500 capped by max_items, and 300
    assert "query 2/3 (250/300)" in line
    assert "ETA" not in line
    stats.queries[2] = CrawlStats(tracks=10, total=20, pages=1)
    line = progress.render(stats, 200)
    assert "760/820 tracks (93%)" in line
    assert "ETA" in line
    assert "query 3/3 (10/20)" in line
