"""Run the benchmarks and write docs/benchmarks.md with the machine they ran on."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
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


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return ["(no rows)"]
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return lines


def main() -> int:
    os.environ.setdefault("EGOV_ENV", "test")
    # EGOV_BENCH_DATABASE_NAME lets two checkouts benchmark side by side without dropping each other's database.
    database = os.environ.get("EGOV_BENCH_DATABASE_NAME", "egovsad_bench")
    settings = load_settings({**os.environ, "EGOV_DATABASE_NAME": database})
    out = ["# Benchmarks", "", "Written by `make bench`; do not edit by hand.", "", "## Machine", ""]
    out += _machine(settings)
    selected = sys.argv[1:] or BENCHMARKS
    for name in selected:
        module = importlib.import_module(name)
        print(f"running {name} ...", flush=True)
        rows = module.run(settings)
        out += ["", f"## {module.TITLE}", "", (module.__doc__ or "").strip(), ""] + _table(rows)
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(out) + "\n")
    print("wrote docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
