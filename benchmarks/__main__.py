"""`python -m benchmarks [--smoke] [--only NAME ...]`: run the benchmarks, write the results.

A full run writes `results.md`, `results.json` and `results.png` next to this
file; `--smoke` runs every benchmark at a tiny size and writes nothing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from . import _report
from ._common import Result, Settings

#: Benchmark modules, in the order of the issue.
BENCHMARKS = (
    "overhead",
    "decode",
    "sync_facade",
    "imports",
    "concurrency",
    "memory",
    "transport",
    "crawl",
    "multiquery",
    "cache",
    "players",
    "first_result",
    "tier",
    "fleet",
    "hooks",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; write no results")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only this one (repeatable)"
    )
    args = parser.parse_args(argv)
    settings = Settings(smoke=args.smoke)
    results: list[Result] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in args.only or BENCHMARKS:
        print(f"== {name}", flush=True)
        began = time.perf_counter()
        try:
            module = importlib.import_module(f".{name}", __package__)
            produced = module.run(settings)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        for result in produced:
            print("  " + _report.line(result), flush=True)
        print(f"  ({time.perf_counter() - began:.1f} s)", flush=True)
        results.extend(produced)
    print(f"== done in {time.perf_counter() - started:.1f} s", flush=True)
    if not args.smoke and not args.only and not failed:
        _report.write(results)
    elif not args.smoke and results:
        print("results.* not written: a full run of every benchmark writes them")
    if failed:
        print(f"failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
