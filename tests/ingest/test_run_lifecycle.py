"""Runs always end: succeeded, failed with a reason, or queued for an attempt that will happen.

Whatever kills the worker, its work-horse or its database connection; and a run that did not load
can be sent again. Transient errors are tried again, permanent ones are not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from tenants.context import tenant_transaction
from tenants.ingest import loader, runs
from tests.ingest.conftest import EVENT_HEADER, HUNDESTEUER, rows, sign_in
from tests.ingest.test_upload_and_api import upload, work

CSV = (f"{EVENT_HEADER}\n,2026-03-02T09:00:00+01:00,{HUNDESTEUER},s1,started,,,web,,,,\n"
       f",2026-03-02T09:04:00+01:00,{HUNDESTEUER},s1,submitted,,,web,,,,\n").encode()


def _run(app, tenant_id):
    return rows(app, tenant_id, "SELECT id, status, attempts, error, error_args FROM portal.ingest_runs")[0]


class Notes:
    """What the work-horse (a forked process) noted, in a file the test reads."""

    def __init__(self, path: Path):
        self.path = path

    def add(self, line: str) -> None:
        with self.path.open("a") as out:
            out.write(line + "\n")

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []


def test_finished_at_is_the_moment_the_load_ended(app, sources, two_tenants, monkeypatch, tmp_path):
    from datetime import datetime

    notes, original = Notes(tmp_path / "clock"), loader.add_cube_to_rollups

    def rollups_then_note_the_time(cur, tenant_id):
        original(cur, tenant_id)
        cur.execute("SELECT clock_timestamp()")
        notes.add(cur.fetchone()[0].isoformat())

    monkeypatch.setattr(loader, "add_cube_to_rollups", rollups_then_note_the_time)
    upload(sign_in(app, two_tenants.a.id, "editor"), two_tenants.a.ags, sources.a, CSV)
    work(app)
    finished = rows(app, two_tenants.a.id, "SELECT finished_at FROM portal.ingest_runs WHERE status = 'succeeded'")
    assert finished[0][0] >= datetime.fromisoformat(notes.lines()[0])  # not the start of the load's transaction


def test_a_permanent_error_fails_at_once_with_its_reason(app, sources, two_tenants, monkeypatch, tmp_path):
    calls = Notes(tmp_path / "calls")

    def broken(*args, **kwargs):
        calls.add("load")
        raise psycopg.errors.SyntaxError('zero-length delimited identifier at or near """"')

    monkeypatch.setattr(loader, "load", broken)
    upload(sign_in(app, two_tenants.a.id, "editor"), two_tenants.a.ags, sources.a, CSV)
    work(app)
    _, status, attempts, error, args = _run(app, two_tenants.a.id)
    assert (status, attempts, len(calls.lines())) == ("failed", 1, 1)  # RQ would have tried 3 more times
    assert error == runs.FAILED and "zero-length" in args["detail"]


def test_a_transient_error_is_tried_again_and_the_run_loads(app, sources, two_tenants, monkeypatch, tmp_path):
    original, calls = loader.load, Notes(tmp_path / "calls")

    def flaky(*args, **kwargs):
        calls.add("load")
        if len(calls.lines()) == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return original(*args, **kwargs)

    monkeypatch.setattr(loader, "load", flaky)
    upload(sign_in(app, two_tenants.a.id, "editor"), two_tenants.a.ags, sources.a, CSV)
    work(app)
    assert _run(app, two_tenants.a.id)[1:3] == ("succeeded", 2)
    assert rows(app, two_tenants.a.id, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(1, 1)]


def test_a_run_nobody_works_on_is_queued_again_when_the_health_page_is_opened(app, sources, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    upload(admin, two_tenants.a.ags, sources.a, CSV)
    # The worker died after it marked the run running: no lock is held, RQ knows of no job.
    with app.app_context(), tenant_transaction(two_tenants.a.id) as session:
        session.execute(text("UPDATE portal.ingest_runs SET status = 'running', attempts = 1"))
    from rq.job import Job

    from tenants.jobs import redis_connection

    job_id = rows(app, two_tenants.a.id, "SELECT job_id FROM portal.ingest_runs")[0][0]
    Job.fetch(job_id, connection=redis_connection(app.config["EGOV"].redis_url)).delete()
    page = admin.get(f"/t/{two_tenants.a.ags}/data/health").get_data(as_text=True)
    _, status, attempts, error, _ = _run(app, two_tenants.a.id)
    assert (status, error) == ("queued", runs.INTERRUPTED)
    assert "wird erneut versucht" in page and "Jetzt erneut versuchen" in page
    work(app)
    assert _run(app, two_tenants.a.id)[1:3] == ("succeeded", 2)


def test_a_run_whose_attempts_are_used_up_fails_with_the_reason_and_can_be_sent_again(app, sources, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    run_url = upload(admin, two_tenants.a.ags, sources.a, CSV).headers["Location"]
    with app.app_context(), tenant_transaction(two_tenants.a.id) as session:
        session.execute(text("UPDATE portal.ingest_runs SET status = 'running', attempts = :n"),
                        {"n": runs.RETRIES + 1})
    status = admin.get(run_url + "/status").get_json()
    assert status["status"] == "failed" and "4-mal unterbrochen" in status["error"]
    page = admin.get(f"/t/{two_tenants.a.ags}/data/health").get_data(as_text=True)
    assert "4-mal unterbrochen" in page and ">Erneut versuchen<" in page.replace("<span class=\"kern-label\">", ">")
    # Sending the same file again loads it: nothing of it was loaded.
    again = upload(admin, two_tenants.a.ags, sources.a, CSV)
    assert again.headers["Location"] == run_url
    assert "bereits geladen" not in admin.get(run_url).get_data(as_text=True)
    work(app)
    assert _run(app, two_tenants.a.id)[1] == "succeeded"
    assert rows(app, two_tenants.a.id, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(1, 1)]


# -- with a real worker process that gets killed ----------------------------------------------------

def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _worker(settings) -> subprocess.Popen:
    env = {**os.environ, "EGOV_ENV": "test", "EGOV_DATABASE_NAME": settings.database_name,
           "EGOV_REDIS_URL": settings.redis_url}
    return subprocess.Popen([str(Path(sys.executable).parent / "egov"), "worker", "--burst", "default"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _waiting_on(admin, tenant_id: int) -> int | None:
    """The backend that waits for the tenant's load lock (held by the test): a load mid-way, for sure."""
    row = admin.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = %s "
                        "AND objid = %s", (loader.ADVISORY_NAMESPACE, tenant_id)).fetchone()
    return row[0] if row else None


def _until(condition, worker, what: str, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, (what, worker.stderr.read().decode()[-3000:] if worker.poll() else "")
        time.sleep(0.05)
    return found


def _gone(admin, pid: int) -> bool:
    return not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()


@pytest.fixture
def admin_db(settings):
    conn = psycopg.connect(settings.admin_database_url.rsplit("/", 1)[0] + "/" + settings.database_name,
                           autocommit=True)
    yield conn
    conn.close()


@pytest.mark.slow
def test_every_attempt_killed_ends_failed_then_the_file_is_sent_again(app, sources, two_tenants, settings, admin_db):
    a = two_tenants.a.id
    admin = sign_in(app, a, "admin")
    run_url = upload(admin, two_tenants.a.ags, sources.a, CSV).headers["Location"]
    admin_db.execute("SELECT pg_advisory_lock(%s, %s)", (loader.ADVISORY_NAMESPACE, a))
    worker = _worker(settings)
    try:
        for attempt in range(1, runs.RETRIES + 2):
            backend = _until(lambda: _waiting_on(admin_db, a), worker, f"attempt {attempt} loading")
            assert _run(app, a)[1:3] == ("running", attempt)
            os.kill(_until(lambda: _children(worker.pid), worker, "work-horse")[0], signal.SIGKILL)
            _until(lambda backend=backend: _gone(admin_db, backend), worker, "the killed horse's backend ending")
        worker.wait(timeout=60)  # no attempt left: the burst worker finishes
    finally:
        if worker.poll() is None:
            worker.kill()
    _, status, attempts, error, args = _run(app, a)
    assert (status, attempts, error) == ("failed", runs.RETRIES + 1, runs.GAVE_UP)
    page = admin.get(f"/t/{two_tenants.a.ags}/data/health").get_data(as_text=True)
    assert "4-mal unterbrochen" in page and "Erneut versuchen" in page
    assert rows(app, a, "SELECT count(*) FROM analytics.process_events") == [(0,)]
    admin_db.execute("SELECT pg_advisory_unlock(%s, %s)", (loader.ADVISORY_NAMESPACE, a))
    assert upload(admin, two_tenants.a.ags, sources.a, CSV).headers["Location"] == run_url
    work(app)
    assert _run(app, a)[1] == "succeeded"
    assert rows(app, a, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(1, 1)]


@pytest.mark.slow
def test_a_whole_worker_killed_leaves_the_run_queued_for_a_retry_that_happens(
        app, sources, two_tenants, settings, admin_db):
    a = two_tenants.a.id
    admin = sign_in(app, a, "admin")
    upload(admin, two_tenants.a.ags, sources.a, CSV)
    admin_db.execute("SELECT pg_advisory_lock(%s, %s)", (loader.ADVISORY_NAMESPACE, a))
    worker = _worker(settings)
    try:
        backend = _until(lambda: _waiting_on(admin_db, a), worker, "loading")
        horse = _until(lambda: _children(worker.pid), worker, "work-horse")[0]
        os.kill(worker.pid, signal.SIGKILL)
        os.kill(horse, signal.SIGKILL)
        worker.wait(timeout=10)
        _until(lambda: _gone(admin_db, backend), worker, "the killed horse's backend ending")
    finally:
        if worker.poll() is None:
            worker.kill()
        admin_db.execute("SELECT pg_advisory_unlock(%s, %s)", (loader.ADVISORY_NAMESPACE, a))
    assert _run(app, a)[1] == "running"  # as the dead worker left it
    page = admin.get(f"/t/{two_tenants.a.ags}/data/health").get_data(as_text=True)
    _, status, _, error, args = _run(app, a)
    assert (status, error, args) == ("queued", runs.INTERRUPTED, {"detail": runs.WORKER_GONE})
    assert "der Verarbeitungsprozess wurde beendet" in page
    work(app)  # the retry that was promised
    assert _run(app, a)[1] == "succeeded"
    assert rows(app, a, "SELECT started, submitted FROM analytics.rollup_service_daily") == [(1, 1)]


@pytest.mark.slow
def test_a_killed_database_connection_is_tried_again(app, sources, two_tenants, settings, admin_db):
    a = two_tenants.a.id
    upload(sign_in(app, a, "editor"), two_tenants.a.ags, sources.a, CSV)
    admin_db.execute("SELECT pg_advisory_lock(%s, %s)", (loader.ADVISORY_NAMESPACE, a))
    worker = _worker(settings)
    try:
        backend = _until(lambda: _waiting_on(admin_db, a), worker, "loading")
        admin_db.execute("SELECT pg_terminate_backend(%s)", (backend,))
        _until(lambda: _waiting_on(admin_db, a) not in (None, backend), worker, "the second attempt loading")
        assert _run(app, a)[1:3] == ("running", 2)
        admin_db.execute("SELECT pg_advisory_unlock(%s, %s)", (loader.ADVISORY_NAMESPACE, a))
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert _run(app, a)[1:3] == ("succeeded", 2)
