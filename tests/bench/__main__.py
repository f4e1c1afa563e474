"""Run the benchmarks and write docs/benchmarks.md with the machine they ran on."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tenants.settings import load_settings
from tests.bench import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]


def _machine(settings) -> list[str]:
    import psycopg

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    with psycopg.connect(settings.admin_database_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2:3]
    return [
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem_kb / 1024 / 1024:.1f} GiB",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}, PostgreSQL {pg}, Redis {' '.join(redis)}",
    ]


def _calibration(settings) -> str:
    """A fixed amount of single-core work in Python and in PostgreSQL, timed: sections measured on different
    days (or hosts) can be compared by it (this machine's speed varied by about 1.7x between days)."""
    import psycopg

    started = time.perf_counter()
    sum(i * i for i in range(5_000_000))
    python_ms = (time.perf_counter() - started) * 1000
    with psycopg.connect(settings.admin_database_url) as conn:
        started = time.perf_counter()
        conn.execute("SELECT sum(g::bigint * g) FROM generate_series(1, 5000000) g").fetchone()
        postgres_ms = (time.perf_counter() - started) * 1000
    return f"Python {python_ms:.0f} ms, PostgreSQL {postgres_ms:.0f} ms"


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return ["(no rows)"]
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return lines


def _sections(text: str) -> dict[str, str]:
    """The ``## `` sections of an earlier docs/benchmarks.md by title (heading line included)."""
    parts = text.split("\n## ")[1:]
    return {part.split("\n", 1)[0].strip(): "## " + part for part in parts}


def main() -> int:
    os.environ.setdefault("EGOV_ENV", "test")
    # EGOV_BENCH_DATABASE_NAME lets two checkouts benchmark side by side without dropping each other's database.
    database = os.environ.get("EGOV_BENCH_DATABASE_NAME", "egovsad_bench")
    settings = load_settings({**os.environ, "EGOV_DATABASE_NAME": database})
    out = ["# Benchmarks", "", "Written by `make bench`; do not edit by hand.", "", "## Machine", ""]
    out += _machine(settings)
    selected = sys.argv[1:] or BENCHMARKS
    path = ROOT / "docs" / "benchmarks.md"
    # `python -m tests.bench <module>` runs some: the other modules' sections of the last run stay.
    earlier = _sections(path.read_text()) if path.exists() else {}
    for name in BENCHMARKS:
        module = importlib.import_module(name)
        if name not in selected:
            if module.TITLE in earlier:
                out += ["", earlier[module.TITLE].rstrip()]
            continue
        print(f"running {name} ...", flush=True)
        calibration = _calibration(settings)
        rows = module.run(settings)
        out += ["", f"## {module.TITLE}", "", (module.__doc__ or "").strip(), "",
                f"_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; this machine's speed then (fixed single-core work, "
                f"lower is faster): {calibration}._", ""]
        if isinstance(rows, dict):  # several tables, each under its own heading
            for heading, table in rows.items():
                out += [f"### {heading}", ""] + _table(table) + [""]
        else:
            out += _table(rows)
    path.write_text("\n".join(out).rstrip() + "\n")
    print("wrote docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
