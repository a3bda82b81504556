"""The results: one line per result on the terminal, and results.md, .json and .png."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from ._common import Result

HERE = Path(__file__).parent
PACKAGES = (
    "audioscape-async",
    "httpx",
    "httpcore",
    "anyio",
    "attrs",
    "cattrs",
    "orjson",
    "tenacity",
    "aiohttp",
    "httpx-aiohttp",
    "pydantic",
    "msgspec",
    "trio",
    "uvicorn",
    "starlette",
)


def _verdict(result: Result) -> str:
    return {True: "pass", False: "FAIL", None: "—"}[result.passed]


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def line(result: Result) -> str:
    variants = ", ".join(f"{k}: {_number(v)}" for k, v in result.variants.items())
    ratio = f"{result.ratio:.2f}" if result.ratio is not None else "n/a"
    return (
        f"{result.benchmark}: {variants} {result.unit} | {result.ratio_label} = {ratio} "
        f"(target {result.target or 'none'}) {_verdict(result)}"
    )


def _cpu_model() -> str:
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "packages": versions,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def markdown(results: list[Result], info: dict[str, Any]) -> str:
    rows = [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks` (`nox -s bench`). Each benchmark runs its "
        "variants in one run, interleaved, and compares medians; see `benchmarks/` for "
        "what each one does.",
        "",
        "| benchmark | variants (medians) | ratio | target | result |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        variants = "<br>".join(f"{k}: {_number(v)} {r.unit}" for k, v in r.variants.items())
        ratio = f"{r.ratio:.2f} ({r.ratio_label})" if r.ratio is not None else "n/a"
        rows.append(f"| {r.benchmark} | {variants} | {ratio} | {r.target or '—'} | {_verdict(r)} |")
    rows += ["", "## Notes", ""]
    for r in results:
        for note in r.notes:
            rows.append(f"- {r.benchmark}: {note}")
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)
    rows += [
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores",
        f"- Python {info['python']} ({info['implementation']}), {info['os']}",
        f"- Packages: {packages}",
        f"- Run: {info['date']}",
        "",
    ]
    return "\n".join(rows)


def chart(results: list[Result], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  note: matplotlib is not installed; no chart")
        return False
    shown = [r for r in results if r.ratio is not None and r.target]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(shown) + 1.5))
    for y, r in enumerate(shown):
        bound = float(r.target.split()[1])
        color = "tab:green" if r.passed else "tab:red"
        ax.barh(y, r.ratio, color=color, alpha=0.8)
        ax.plot([bound, bound], [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.text(r.ratio, y, f" {r.ratio:.2f} (target {r.target})", va="center", fontsize=8)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([f"{r.benchmark}\n{r.ratio_label}" for r in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ratio (black bar: target; green: met, red: not met)")
    ax.set_title("audioscape-async benchmarks: ratios against targets")
    right = max(max(r.ratio or 0 for r in shown), *(float(r.target.split()[1]) for r in shown))
    ax.set_xlim(0, right * 1.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(results: list[Result]) -> None:
    info = machine()
    (HERE / "results.md").write_text(markdown(results, info), encoding="utf-8")
    payload = {"machine": info, "results": [r.to_json() for r in results]}
    (HERE / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    drawn = chart(results, HERE / "results.png")
    print("wrote benchmarks/results.md, results.json" + (", results.png" if drawn else ""))
