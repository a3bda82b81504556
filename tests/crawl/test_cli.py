"""The `audioscape` command: search, crawl (with kill -9 and --resume), and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from audioscape_async import Client
from audioscape_async._cli import main
from audioscape_async.emulator import EmulatorServer, Faults, KeyRateLimit
from tests.crawl.support import QUERY, run_cli
from tests.helpers import interruptible
from tests.serving.redis_server import RedisServer


def test_readme_first_command_prints_fitting_tracks() -> None:
    """`audioscape search --emulator` prints a table of dark cinematic tracks and a meta line."""
    result = run_cli("search", "--emulator", "dark cinematic boss tension")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ASSET", "ID", "NAME"]
    rows = lines[1:-1]
    assert len(rows) == 20
    assert sum("cinematic" in row or "orchestral" in row for row in rows) >= 15
    assert "search: semantic" in lines[-1]


def test_search_json_matches_the_sdk(env: dict[str, str], cli_server: EmulatorServer) -> None:
    """--json prints the API's JSON for the same search the SDK makes."""
    result = run_cli(
        "search", QUERY, "--limit", "5", "--genre", "lo-fi", "--min-likes", "1", "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    printed = orjson.loads(result.stdout)
    with Client(cli_server.api_key, base_url=cli_server.url) as client:
        page = client.search(QUERY, limit=5, filters={"genres": ["lo-fi"], "min_likes": 1})
    assert printed == page.to_dict()
    assert {track["genre"] for track in printed["tracks"]} == {"lo-fi"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["search", "x", "--limit", "101"],
            "--limit: must be a whole number from 1 to 100, got 101",
        ),
        (["search", "x", "--limit", "-5"], "--limit: must be a whole number from 1 to 100, got -5"),
        (
            ["search", "x", "--limit", "ten"],
            "--limit: must be a whole number from 1 to 100, got 'ten'",
        ),
        (["search", "x", "--offset", "-1"], "--offset: must be a whole number >= 0, got -1"),
        (
            ["search", "x", "--created-after", "2024-02-30"],
            "--created-after: must be a real date written YYYY-MM-DD, got '2024-02-30'",
        ),
        (
            ["search", "x", "--min-duration", "90", "--max-duration", "30"],
            "--min-duration/--max-duration: min (90.0) must be",
        ),
        (["search", "x", "--timeout", "soon"], "--timeout: must be a number of seconds >= 0"),
        (["search", "  "], "QUERY: must not be empty or blank"),
        (["search", "x", "--genre", ""], "--genre: "),
        (["crawl", "x", "--out", "o.jsonl", "--burst", "3"], "--burst goes with --rps"),
        (["crawl", "x", "--out", "o.jsonl", "--adaptive"], "--adaptive goes with --rps"),
        (["crawl", "x", "--out", "o.jsonl", "--rps", "0"], "--rps: must be a number > 0, got 0"),
        (
            ["crawl", "x", "--out", "o", "--concurrency", "0"],
            "--concurrency: must be a whole number",
        ),
        (["crawl", "x", "--out", "o", "--page-size", "101"], "from 1 to 100, got 101"),
        (["crawl", "x", "--out", "o", "--format", "xml"], "--format: invalid choice: 'xml'"),
        (["crawl", "x", "--out", "-", "--resume"], "--resume: a crawl to standard output"),
        (["crawl", "--out", "o.jsonl"], "give at least one query"),
        (["crawl", "x"], "the following arguments are required: --out"),
        (["crawl", "x", "--out", "o", "--plan", "nowhere.json"], "--plan nowhere.json: No such"),
        (["crawl", "x", "--out", "o", "--queries", "nowhere.txt"], "--queries nowhere.txt: No"),
        (["search", "x", "--bogus"], "unrecognized arguments: --bogus"),
        (["crawl", "x", "--out", "o.xlsx"], "--out: its extension '.xlsx' names no output"),
        (["crawl", "x", "--out", "o.xlsx"], "or choose one with --format (jsonl, "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input prints one error line in one style naming the option and rule, exit 2."""
    assert main([*args, "--emulator"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("audioscape: error: ")
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert "usage:" not in captured.err
    assert captured.out == ""


def test_argparse_errors_exit_2_without_traceback() -> None:
    """A malformed number, in a real process, is one line and exit 2."""
    result = run_cli("search", "x", "--limit", "ten")
    assert result.returncode == 2
    assert result.stderr == (
        "audioscape: error: --limit: must be a whole number from 1 to 100, got 'ten'\n"
    )


def test_api_errors_exit_1(env: dict[str, str]) -> None:
    """A wrong key is an API error: one line, exit 1, and the key is not printed."""
    result = run_cli("search", QUERY, env={**env, "AUDIOSCAPE_API_KEY": "wrong-key-123"})
    assert result.returncode == 1
    assert result.stderr.startswith("audioscape: error: 401: Invalid API key")
    assert "wrong-key-123" not in result.stderr + result.stdout


def test_missing_key_names_the_variable() -> None:
    """Without a key the command says which variable to set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIOSCAPE_")}
    result = subprocess.run(
        [sys.executable, "-m", "audioscape_async", "search", QUERY],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "AUDIOSCAPE_API_KEY" in result.stderr


def test_crawl_writes_every_track_and_a_summary(env: dict[str, str], tmp_path: Path) -> None:
    """`audioscape crawl` writes one JSON track per line and prints a summary."""
    out = tmp_path / "tracks.jsonl"
    result = run_cli("crawl", QUERY, "--out", str(out), "--max-items", "1234", env=env)
    assert result.returncode == 0, result.stderr
    ids = [orjson.loads(line)["asset_id"] for line in out.read_bytes().splitlines()]
    assert len(ids) == len(set(ids)) == 1234
    assert "wrote 1,234 tracks" in result.stdout
    assert "drift: none" in result.stdout
    # Not a terminal: plain progress lines, no carriage returns.
    assert "\r" not in result.stderr


def test_crawl_stats_add_the_attempts_by_status(
    env: dict[str, str], cli_server: EmulatorServer, tmp_path: Path
) -> None:
    """`--stats` ends the summary with the HTTP attempts by status and their time."""
    cli_server.emulator.force_fault("503")
    out = tmp_path / "tracks.jsonl"
    args = ("crawl", QUERY, "--out", str(out), "--max-items", "250", "--page-size", "50")
    result = run_cli(*args, "--stats", env=env)
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("HTTP attempts: 6 (200 x5, 503 x1); attempt time p50 "), last
    plain = run_cli(*args, "--force", env=env)
    assert "HTTP attempts" not in plain.stdout


def _wait_for_lines(path: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {count} lines")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_crawl_resumes_exactly(
    env: dict[str, str], cli_server: EmulatorServer, tmp_path: Path, stop: signal.Signals
) -> None:
    """A crawl killed half-way and resumed with --resume writes exactly the uninterrupted set."""
    with Client(cli_server.api_key, base_url=cli_server.url) as client:
        expected = [t.asset_id for t in client.iter_tracks(QUERY, max_items=4_000)]
    out = tmp_path / "tracks.jsonl"
    part = tmp_path / "tracks.jsonl.part"
    cli_server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.03))
    args = ["crawl", QUERY, "--out", str(out), "--max-items", "4000", "--concurrency", "2"]
    process = subprocess.Popen(
        interruptible("audioscape_async", *args),  # SIGINT raises, whatever the launcher does
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_lines(part, 1_500)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert "--resume" in stderr
        assert "Traceback" not in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    assert not out.exists()
    done = part.read_bytes().count(b"\n")
    assert 1_500 <= done < 4_000

    cli_server.emulator.set_faults(None)
    result = run_cli(*args, "--resume", env=env)
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data.endswith(b"\n")
    ids = [orjson.loads(line)["asset_id"] for line in data.splitlines()]
    assert ids == expected
    assert "resumed at offset" in result.stdout
    assert not part.exists()


def test_resume_of_a_finished_crawl_is_a_no_op(env: dict[str, str], tmp_path: Path) -> None:
    """--resume after the crawl finished leaves the output as it is."""
    out = tmp_path / "tracks.jsonl"
    assert run_cli("crawl", QUERY, "--out", str(out), "--max-items", "300", env=env).returncode == 0
    before = out.read_bytes()
    result = run_cli("crawl", QUERY, "--out", str(out), "--max-items", "300", "--resume", env=env)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == before


def test_crawl_refuses_to_overwrite(env: dict[str, str], tmp_path: Path) -> None:
    """An existing output is kept unless --force; the error says what to do, in flags."""
    out = tmp_path / "tracks.jsonl"
    out.write_text("mine\n")
    result = run_cli("crawl", QUERY, "--out", str(out), env=env)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert "pass --force to replace it, or --resume to finish" in result.stderr
    assert "=True" not in result.stderr
    assert out.read_text() == "mine\n"


def test_version() -> None:
    """--version prints the package version."""
    from audioscape_async import __version__

    result = run_cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


MOODS = ["chill lo-fi beats", "lofi study", "sad piano"]


SUFFIX = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "csv": ".csv", "parquet": ".parquet"}


def _records(path: Path, fmt: str) -> list[dict[str, object]]:
    """The records of an output file of any format."""
    import csv
    import gzip

    if fmt == "jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]
    if fmt == "jsonl.gz":
        return [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        ints = ("query_index", "query_rank", "query_offset", "matched_queries")
        return [{k: int(v) if k in ints else v for k, v in row.items()} for row in rows]
    import pyarrow.parquet as pq

    return list(pq.read_table(path).to_pylist())


def _provenance(records: list[dict[str, object]]) -> list[tuple[object, ...]]:
    keys = ("asset_id", "query_index", "query_rank", "query_offset", "matched_queries")
    return [tuple(record[key] for key in keys) for record in records]


def _formats() -> list[str]:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return ["jsonl", "jsonl.gz", "csv"]
    return list(SUFFIX)


def test_queries_file_and_plans_feed_one_crawl(env: dict[str, str], tmp_path: Path) -> None:
    """Arguments, --queries FILE and a JSON or TOML --plan make one de-duplicated crawl."""
    listed = tmp_path / "moods.txt"
    listed.write_text(f"# moods\n{MOODS[1]}\n\n")
    plan_json = tmp_path / "plan.json"
    plan_json.write_bytes(
        orjson.dumps({"queries": [{"query": MOODS[2], "filters": {"genres": ["classical"]}}]})
    )
    plan_toml = tmp_path / "plan.toml"
    plan_toml.write_text(
        f'[[queries]]\nquery = "{MOODS[2]}"\nfilters = {{ genres = ["classical"] }}\n'
    )
    outs = []
    for plan in (plan_json, plan_toml):
        out = tmp_path / f"out-{plan.suffix[1:]}.jsonl"
        result = run_cli(
            "crawl", MOODS[0], "--queries", str(listed), "--plan", str(plan),
            "--max-items", "200", "--out", str(out), env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "3 queries" in result.stdout
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    records = _records(tmp_path / "out-json.jsonl", "jsonl")
    assert len({r["asset_id"] for r in records}) == len(records)
    assert {r["query"] for r in records} == set(MOODS)
    assert {r["genre"] for r in records if r["query_index"] == 2} == {"classical"}


def test_a_bad_plan_is_one_line_naming_the_entry(tmp_path: Path) -> None:
    """A plan entry with bad filters is a usage error naming the file and the entry."""
    plan = tmp_path / "plan.json"
    plan.write_bytes(orjson.dumps([MOODS[0], {"query": "x", "filters": {"min_likes": -1}}]))
    result = run_cli("crawl", "--plan", str(plan), "--out", str(tmp_path / "o.jsonl"), "--emulator")
    assert result.returncode == 2
    assert result.stderr.startswith(f"audioscape: error: --plan {plan}: query 2: ")
    assert result.stderr.count("\n") == 1


def test_a_second_crawl_into_the_same_out_fails_at_once(
    env: dict[str, str], cli_server: EmulatorServer, tmp_path: Path
) -> None:
    """While one crawl runs, a second into the same OUT exits 1 at once and sends nothing."""
    out = tmp_path / "tracks.jsonl"
    cli_server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.05))
    args = ["crawl", QUERY, "--out", str(out), "--max-items", "3000", "--concurrency", "1"]
    first = subprocess.Popen(
        [sys.executable, "-m", "audioscape_async", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_lines(tmp_path / "tracks.jsonl.part", 100)
        before = len(cli_server.emulator.requests)
        started = time.monotonic()
        second = run_cli(*args, "--resume", env=env)
        took = time.monotonic() - started
        during = len(cli_server.emulator.requests) - before
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 1
    assert "another crawl is writing it" in second.stderr
    assert second.stderr.count("\n") == 1
    assert took < 5
    assert during <= took / 0.05 + 2  # only the first crawl's own requests


def test_max_retry_after_fails_fast(env: dict[str, str], cli_server: EmulatorServer) -> None:
    """--max-retry-after 1 turns a 429 asking for 30 s into one error line, without waiting."""
    cli_server.emulator.set_faults(Faults(retry_after=30))
    cli_server.emulator.force_fault("429")
    started = time.monotonic()
    result = run_cli("crawl", QUERY, "--out", "-", "--max-retry-after", "1", env=env)
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert "429" in result.stderr
    assert "retry after 30 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_adaptive_rate_limit_crawls(env: dict[str, str], tmp_path: Path) -> None:
    """--rps with --adaptive is accepted, says in one line that it is deprecated, and crawls."""
    out = tmp_path / "t.jsonl"
    result = run_cli(
        "crawl", QUERY, "--out", str(out), "--max-items", "300", "--rps", "100", "--adaptive",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(out.read_bytes().splitlines()) == 300
    assert "--adaptive is deprecated: without --rps" in result.stderr
    assert "DeprecationWarning" not in result.stderr


def test_a_crawl_without_rps_finds_the_tier(
    cli_server: EmulatorServer, env: dict[str, str], tmp_path: Path
) -> None:
    """No --rps against a 100/s tier at concurrency 16: complete, exact, and quiet about the
    429s it drew finding the tier (they slow the crawl; they are not faults)."""
    cli_server.emulator.set_rate_limit(KeyRateLimit(rate=100, burst=10))
    out = tmp_path / "t.jsonl"
    result = run_cli(
        "crawl", QUERY, "--out", str(out), "--max-items", "8000", "--concurrency", "16",
        "--max-retries", "0", "--progress", "none", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ids = [orjson.loads(line)["asset_id"] for line in out.read_bytes().splitlines()]
    assert len(ids) == len(set(ids)) == 8000
    assert any(r.status == 429 for r in cli_server.emulator.requests)
    assert "WARNING" not in result.stderr


@pytest.mark.parametrize("command", ["search", "crawl"])
def test_a_closed_pipe_exits_quietly(env: dict[str, str], command: str) -> None:
    """`audioscape ... | head -1` exits 0 with nothing on stderr but progress."""
    args = (
        f"search '{QUERY}' --limit 100"
        if command == "search"
        else f"crawl '{QUERY}' --out - --max-items 5000 --progress none"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m audioscape_async {args} | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1


def _kill_and_resume(env: dict[str, str], tmp_path: Path, trials: int, seed: int) -> int:
    """Crawl into each format, killed with SIGKILL at random moments, then resumed to the end.

    Return how many kills left a partial output with tracks in it (a resume mid-crawl).
    """
    import random

    rng = random.Random(seed)
    reference = tmp_path / "reference.jsonl"
    common = [*MOODS, "--max-items", "400", "--page-size", "50", "--concurrency", "2"]
    started = time.monotonic()
    done = run_cli("crawl", *common, "--out", str(reference), env=env)
    assert done.returncode == 0, done.stderr
    # Kill anywhere from the start of the process to the end of an uninterrupted run.
    whole_run = time.monotonic() - started
    expected = _provenance(_records(reference, "jsonl"))
    formats = _formats()
    mid_crawl = 0
    for trial in range(trials):
        fmt = formats[trial % len(formats)]
        directory = tmp_path / f"trial{trial}"
        directory.mkdir()
        out = directory / f"out{SUFFIX[fmt]}"
        resume: list[str] = []
        for _ in range(12):
            process = subprocess.Popen(
                [sys.executable, "-m", "audioscape_async", "crawl", *common, "--out", str(out),
                 "--progress", "none", *resume],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            resume = ["--resume"]
            try:
                _, err = process.communicate(timeout=rng.uniform(0.05, whole_run))
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                part = out.with_name(out.name + ".part")
                mid_crawl += part.exists() and part.stat().st_size > 0
                continue
            assert process.returncode == 0, err.decode()
            break
        else:
            final = run_cli("crawl", *common, "--out", str(out), "--resume", env=env)
            assert final.returncode == 0, final.stderr
        records = _records(out, fmt)
        assert _provenance(records) == expected, f"trial {trial} ({fmt})"
        assert sorted(p.name for p in directory.iterdir()) == [out.name]
    return mid_crawl


def test_random_kills_and_resumes_write_every_track_once(
    env: dict[str, str], cli_server: EmulatorServer, tmp_path: Path
) -> None:
    """kill -9 at random moments, then --resume, in every format: each track exactly once."""
    cli_server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.05))
    assert _kill_and_resume(env, tmp_path, trials=len(_formats()), seed=11) >= 1


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_random_kills_and_resumes_soak(
    env: dict[str, str], cli_server: EmulatorServer, tmp_path: Path
) -> None:
    """The kill-and-resume trial, forty times over."""
    cli_server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.05))
    assert _kill_and_resume(env, tmp_path, trials=40, seed=12) >= 20


def test_out_dash_streams_json_lines_and_format_beats_the_extension(
    env: dict[str, str], tmp_path: Path
) -> None:
    """--out - writes JSON Lines to stdout (summary on stderr); --format csv overrides .data."""
    streamed = run_cli("crawl", QUERY, "--out", "-", "--max-items", "150", env=env)
    assert streamed.returncode == 0, streamed.stderr
    ids = [orjson.loads(line)["asset_id"] for line in streamed.stdout.splitlines()]
    assert len(ids) == len(set(ids)) == 150
    assert "wrote 150 tracks to standard output" in streamed.stderr
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "tracks.data"
    result = run_cli(
        "crawl", QUERY, "--out", str(out), "--max-items", "150", "--format", "csv", env=env
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("asset_id,name,artist,")
    assert len(_records(out, "csv")) == 150


def test_a_queries_file_with_a_bom_and_crlf(env: dict[str, str], tmp_path: Path) -> None:
    """A Windows editor's BOM and CRLF line ends are not part of the queries."""
    listed = tmp_path / "moods.txt"
    listed.write_bytes(b"\xef\xbb\xbf" + f"{MOODS[1]}\r\n# note\r\n\r\n{MOODS[2]}\r\n".encode())
    out = tmp_path / "out.jsonl"
    result = run_cli(
        "crawl", "--queries", str(listed), "--max-items", "20", "--out", str(out), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {r["query"] for r in _records(out, "jsonl")} == {MOODS[1], MOODS[2]}


def test_a_crawl_with_redis_learns_the_tier_for_the_fleet(
    cli_server: EmulatorServer, env: dict[str, str], tmp_path: Path, redis_server: RedisServer
) -> None:
    """`--redis URL` without --rps: the learned rate lives in Redis, for every process."""
    cli_server.emulator.set_rate_limit(KeyRateLimit(rate=100, burst=10))
    out = tmp_path / "t.jsonl"
    result = run_cli(
        "crawl", QUERY, "--out", str(out), "--max-items", "3000", "--concurrency", "8",
        "--redis", redis_server.url, "--progress", "none", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(out.read_bytes().splitlines()) == 3000
    import redis

    with redis.Redis.from_url(redis_server.url) as connection:
        keys = [key.decode() for key in connection.keys("*")]
    assert any(":tier:" in key for key in keys), keys
    bad = run_cli("crawl", QUERY, "--out", "-", "--redis", "x", "--rps", "5", "--adaptive", env=env)
    assert bad.returncode == 2
    assert "--adaptive" in bad.stderr
