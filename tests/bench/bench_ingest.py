"""The whole ingest path for 1,000,000 process events: a canonical CSV on disk is spooled (hashed for
idempotency), staged with COPY, validated in SQL, inserted under RLS as the application role, and the
rollups of the affected days grow by the inserted events; the clock stops when the rollups show them. The
ceiling next to it is `psql \\copy` of the same file into an unindexed table without RLS, on the same run.
Memory: the loading process's peak resident set size after the load, and before it (the file is larger
than either: it is streamed, never read whole).
"""

from __future__ import annotations

import random
import resource
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from tenants.canonical import EVENT_COLUMNS
from tests.bench.common import fresh_database

TITLE = "Ingest: 1,000,000 process events from CSV to rollups"
EVENTS = 1_000_000
SERVICES = [f"99{n:012d}" for n in range(102013104000, 102013104020)]
FUNNEL = [("started", "", ""), ("step_reached", "1", "Angaben"), ("authentication", "2", "Anmelden"),
          ("step_reached", "3", "Nachweise"), ("payment", "4", "Bezahlen"), ("submitted", "", "")]


def write_events(path: Path, count: int, seed: int = 4) -> None:
    """A year of sessions walking a funnel; written line by line (flat memory)."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, 6, tzinfo=UTC)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(EVENT_COLUMNS) + "\n")
        while written < count:
            ts = start + timedelta(seconds=rng.randrange(365 * 86400))
            service, session = rng.choice(SERVICES), uuid.uuid4().hex
            channel = rng.choice(("web", "web", "web", "ios", "android"))
            depth = rng.randint(1, len(FUNNEL))
            for i, (kind, step, name) in enumerate(FUNNEL[:depth]):
                if written >= count:
                    break
                pay = ("paypal", "epaybl") if kind == "payment" else ("", "")
                auth = ("bundid_eid", "hoch") if kind == "authentication" else ("", "")
                stamp = (ts + timedelta(seconds=40 * i)).isoformat()
                out.write(f"{uuid.uuid4()},{stamp},{service},{session},{kind},{step},{name},{channel},"
                          f"{pay[0]},{pay[1]},{auth[0]},{auth[1]}\n")
                written += 1


def _psql_copy(settings, path: Path) -> float:
    url = settings.admin_database_url.rsplit("/", 1)[0] + "/" + settings.database_name
    cols = ", ".join(f"{c} text" for c in EVENT_COLUMNS)
    subprocess.run(["psql", url, "-qc", f"DROP TABLE IF EXISTS copy_ceiling; CREATE TABLE copy_ceiling ({cols})"],
                   check=True)
    started = time.perf_counter()
    subprocess.run(["psql", url, "-qc", f"\\copy copy_ceiling FROM '{path}' (FORMAT csv, HEADER true)"], check=True)
    return time.perf_counter() - started


def run(settings) -> list[dict]:
    from portal import create_app
    from tenants.context import platform_transaction, tenant_transaction
    from tenants.ingest.runs import load_file
    from tenants.models import DataSource
    from tenants.registry import create_tenant

    fresh_database(settings)
    app = create_app(settings=settings)
    path = Path(settings.var_dir) / "bench_events.csv"
    write_events(path, EVENTS)
    size_mb = path.stat().st_size / 1e6
    with app.app_context():
        with platform_transaction():
            tenant_id = create_tenant("06534014", status="active").id
        with tenant_transaction(tenant_id) as session:
            source = DataSource(tenant_id=tenant_id, name="bench", kind="upload", mapping_profile="canonical")
            session.add(source)
            session.flush()
            source_id = source.id
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        run_row, outcome = load_file(tenant_id, source_id, path)
        with tenant_transaction(tenant_id) as session:
            in_rollups = session.execute(text("SELECT sum(started) + sum(submitted) + sum(aborted) "
                                              "FROM analytics.rollup_service_daily")).scalar()
        ingest_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    copy_s = _psql_copy(settings, path)
    path.unlink()
    assert outcome["status"] == "succeeded" and run_row.rows_accepted == EVENTS, outcome
    memory = "peak RSS MB (before load)"
    return [
        {"path": "eGovSAD ingest (spool, COPY to stage, validate, INSERT under RLS, rollups)",
         "seconds": round(ingest_s, 2), "events/s": f"{EVENTS / ingest_s:,.0f}",
         "vs \\copy": f"{ingest_s / copy_s:.1f}× slower", "file MB": round(size_mb),
         memory: f"{peak_mb:.0f} ({rss_before:.0f})", "started+submitted+aborted in rollups": in_rollups,
         "phases s": ", ".join(f"{k} {v:.1f}" for k, v in outcome.get("timings", {}).items())},
        {"path": "psql \\copy into an unindexed table (ceiling)", "seconds": round(copy_s, 2),
         "events/s": f"{EVENTS / copy_s:,.0f}", "vs \\copy": "1.0×", "file MB": round(size_mb), memory: "",
         "started+submitted+aborted in rollups": "", "phases s": ""},
    ]
