"""A worker killed in the middle of a load leaves nothing behind, and the job is run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tenants.context import tenant_transaction
from tenants.ingest import runs
from tests.bench.bench_ingest import write_events
from tests.ingest.conftest import rows

EVENTS = 20_000  # the lock, not the size, keeps the kill inside the load


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _blocked_inside_its_load(admin) -> bool:
    """True once the loader waits for the rollup table this test holds locked.

    By then it has staged the batch and inserted its events, uncommitted, in its one transaction;
    it cannot go on (nor commit) until the lock is released, so the kill lands mid-load every time.
    Asked as the superuser: other roles see no query text of the app role's sessions.
    """
    return bool(admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND wait_event_type = 'Lock' AND query LIKE '%%analytics.rollup_service_daily%%'").fetchone()[0])


@pytest.mark.slow
def test_killing_the_work_horse_mid_load_leaves_no_partial_data_and_the_job_is_retried(
        app, sources, two_tenants, settings, tmp_path):
    path = tmp_path / "gross.csv"
    write_events(path, EVENTS)
    a = two_tenants.a.id
    with app.app_context():
        with path.open("rb") as fh:
            spooled, key = runs.spool_bytes(a, iter(lambda: fh.read(1 << 20), b""), ".csv")
        with tenant_transaction(a) as session:
            from tenants.models import DataSource, Tenant

            run, _ = runs.accept_batch(session, session.get(Tenant, a), session.get(DataSource, (a, sources.a)),
                                       key, spooled, "csv", "gross.csv")
            run_id = run.id
        runs.enqueue_run(a, run_id)
    env = {**os.environ, "EGOV_ENV": "test", "EGOV_DATABASE_NAME": settings.database_name,
           "EGOV_REDIS_URL": settings.redis_url}
    egov = Path(sys.executable).parent / "egov"
    worker = subprocess.Popen([str(egov), "worker", "--burst", "default"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watcher = psycopg.connect(settings.admin_database_url, dbname=settings.database_name, autocommit=True)
    locker = psycopg.connect(settings.admin_database_url, dbname=settings.database_name)
    try:
        # Held until the work-horse is dead: the load blocks at its rollups, inside its transaction.
        locker.execute("LOCK TABLE analytics.rollup_service_daily IN EXCLUSIVE MODE")
        deadline = time.monotonic() + 120
        while not _blocked_inside_its_load(watcher):
            assert time.monotonic() < deadline and worker.poll() is None, (
                worker.stderr.read().decode()[-2000:], rows(app, a, "SELECT status, error FROM portal.ingest_runs"))
            time.sleep(0.05)
        horses = _children(worker.pid)
        assert horses
        os.kill(horses[0], signal.SIGKILL)
        # Killed mid-transaction: nothing of the batch is visible.
        assert rows(app, a, "SELECT count(*) FROM analytics.process_events") == [(0,)]
        locker.rollback()  # the dead load's transaction is rolled back; the retried job may go on
        worker.wait(timeout=120)  # the burst worker picks the retried job up and finishes it
    finally:
        locker.close()
        watcher.close()
        if worker.poll() is None:
            worker.kill()
    assert rows(app, a, "SELECT status, rows_accepted FROM portal.ingest_runs") == [("succeeded", EVENTS)]
    assert rows(app, a, "SELECT count(*) FROM analytics.process_events") == [(EVENTS,)]
    total = rows(app, a, "SELECT sum(started) + sum(submitted) + sum(aborted) FROM analytics.rollup_service_daily")
    direct = rows(app, a, "SELECT count(*) FROM analytics.process_events "
                          "WHERE event_type IN ('started', 'submitted', 'aborted')")
    assert total == direct  # counted once, not once per attempt
