"""The benchmark report: one row per measurement, the table, and bench/results.md with the
machine's details. Imported by bench/run.py after Django is set up."""

import datetime as dt
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import django
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.md"
ROW_IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12", "B13", "B14")
REDIS_BENCH_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@dataclass
class Row:
    id: str
    what: str
    result: str
    target: str
    baseline: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else "pass" if self.passed else "MISS"


def _first_line(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> list[tuple[str, str]]:
    import celery
    import gunicorn
    import uvicorn

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    try:
        redis_version = redis.Redis.from_url(REDIS_BENCH_URL).info("server")["redis_version"]
    except redis.RedisError:
        redis_version = "unreachable"
    mem_kb = int(_first_line("/proc/meminfo", "MemTotal").split()[0] or 0)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    return [
        ("Date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("Commit", commit or "unknown"),
        ("CPU", _first_line("/proc/cpuinfo", "model name")),
        ("Cores", str(os.cpu_count())),
        ("Memory", f"{mem_kb / 1024 / 1024:.1f} GiB"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("PostgreSQL", postgres),
        ("Redis", redis_version),
        ("gunicorn", f"{gunicorn.__version__} (gthread, 2 workers x 16 threads)"),
        ("Celery", f"{celery.__version__} (threads pool, 2 workers x 16)"),
        ("uvicorn", f"{uvicorn.__version__} (B9-B11: config.asgi, 2 processes; 1 worker x 16)"),
    ]


def table(rows: list[Row]) -> str:
    lines = [
        "| id | what | result | target | vs baseline | pass |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [row.id, row.what, row.result, row.target, row.baseline, row.verdict]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def write_results(
    rows: list[Row], *, quick: bool, selected: set[str], seconds: float, load_before: float
) -> None:
    # Other work on a shared machine shows here: the 1-minute load average of 2 cores.
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    details = "\n".join(
        f"- {name}: {value}" for name, value in [*machine(), ("Load average (1 min)", load)]
    )
    scope = "all rows" if selected == set(ROW_IDS) else "rows " + ", ".join(sorted(selected))
    RESULTS.write_text(
        "# Benchmark results\n\n"
        f"`bench/run.py{' --quick' if quick else ''}`: {scope}, in {seconds:.0f} s. "
        "How to read this table: bench/README.md.\n"
        + (
            "\n**Quick mode: smaller sizes, a smoke run, not the benchmark's figures.**\n"
            if quick
            else ""
        )
        + f"\n{table(rows)}\n\n## Machine\n\n{details}\n"
    )
