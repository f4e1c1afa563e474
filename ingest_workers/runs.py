"""Ingest runs: accept a batch once, load it in a job, record the outcome.

A batch (an uploaded file, a pushed body) is written to the spool directory
(``<EGOV_VAR_DIR>/spool/<tenant>/``, which portal and workers must share) and recorded as a run
with its batch key: the SHA-256 of an uploaded file, the sender's batch id for the push API.
The key is unique per data source, so the same batch sent twice is recognised and changes
nothing. A run that failed may be sent again (or retried from the health page): it loaded
nothing.

:func:`process_run` is the RQ job. The load and the run's final status are one transaction;
if the work-horse is killed half-way, PostgreSQL rolls everything back and RQ runs the job
again (``RETRIES``), which finds the run still unfinished and loads it from the spool.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ingest_workers import loader
from ingest_workers.privacy import tenant_salt
from ingest_workers.profiles import (
    Mapper,
    Profile,
    ProfileError,
    check_header,
    json_rows,
    profile_for,
    read_csv,
    read_xlsx,
)
from tenants.context import tenant_transaction
from tenants.db import db
from tenants.models import DataSource, IngestRun, Tenant

log = logging.getLogger(__name__)

QUEUE = "default"
TIMEOUT = 3600
RETRIES = 3
#: Seconds before each retry; tests shorten them.
RETRY_DELAYS = [10, 60, 300]
PROGRESS_EVERY = 1.0  # seconds between progress updates in Redis


class IngestRefused(ValueError):
    """A batch that cannot be accepted at all; the message is for the sender."""


# -- accepting a batch ----------------------------------------------------------------------------

def spool_dir(tenant_id: int) -> Path:
    path = Path(current_app.config["EGOV"].var_dir) / "spool" / str(int(tenant_id))
    path.mkdir(parents=True, exist_ok=True)
    return path


def spool_bytes(tenant_id: int, chunks, suffix: str) -> tuple[Path, str]:
    """Write a stream to the spool; return its path and SHA-256 (the upload's batch key)."""
    digest = hashlib.sha256()
    path = spool_dir(tenant_id) / f"{uuid.uuid4().hex}{suffix}"
    with path.open("wb") as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


def require_active(tenant: Tenant) -> None:
    if tenant.status != "active":
        raise IngestRefused("The tenant is not active; data cannot be accepted.")


def accept_batch(session, tenant: Tenant, source: DataSource, batch_key: str, spool_path: Path, payload_format: str,
                 filename: str | None = None, requested_by: str | None = None) -> tuple[IngestRun, bool]:
    """Record a batch; ``(run, True)`` when it is new (or a failed one sent again), else the earlier run.

    Call inside ``tenant_transaction(tenant.id)``; enqueue with :func:`enqueue_run` after commit.
    """
    require_active(tenant)
    if not source.active:
        raise IngestRefused("The data source is switched off.")
    existing = session.scalar(select(IngestRun).where(IngestRun.data_source_id == source.id,
                                                      IngestRun.batch_key == batch_key))
    if existing is not None and existing.status != "failed":
        spool_path.unlink(missing_ok=True)
        return existing, False
    if existing is not None:
        _discard(existing.spool_path)
        existing.status, existing.error, existing.spool_path = "queued", None, str(spool_path)
        existing.filename, existing.payload_format, existing.requested_by = filename, payload_format, requested_by
        existing.finished_at = existing.started_at = None
        existing.job_id = job_id_for(tenant.id, existing.id)
        session.flush()
        return existing, True
    run = IngestRun(tenant_id=tenant.id, data_source_id=source.id, batch_key=batch_key, status="queued",
                    spool_path=str(spool_path), payload_format=payload_format, filename=filename,
                    requested_by=requested_by)
    session.add(run)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # the same batch raced in from another request
        spool_path.unlink(missing_ok=True)
        return session.scalar(select(IngestRun).where(IngestRun.data_source_id == source.id,
                                                      IngestRun.batch_key == batch_key)), False
    run.job_id = job_id_for(tenant.id, run.id)
    session.flush()
    return run, True


def job_id_for(tenant_id: int, run_id: int) -> str:
    return f"ingest-{int(tenant_id)}-{int(run_id)}"


def enqueue_run(tenant_id: int, run_id: int) -> str:
    """Queue the load of a run; call after the run's transaction has committed."""
    from ingest_workers.jobs import enqueue

    job = enqueue(process_run, tenant_id, run_id, queue=QUEUE, timeout=TIMEOUT, retries=RETRIES,
                  retry_delays=RETRY_DELAYS, job_id=job_id_for(tenant_id, run_id), connection=_redis())
    return job.id


def _redis():
    from ingest_workers.jobs import redis_connection

    return redis_connection(current_app.config["EGOV"].redis_url)


def _discard(path: str | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)


# -- the job --------------------------------------------------------------------------------------

def _progress_reporter():
    from rq import get_current_job

    job = get_current_job()
    last = [0.0]

    def report(phase: str, fraction: float | None) -> None:
        now = time.monotonic()
        if job is None or (now - last[0] < PROGRESS_EVERY and phase == "staging"):
            return
        last[0] = now
        job.meta["progress"] = {"phase": phase, "fraction": None if fraction is None else round(fraction, 3)}
        job.save_meta()

    return report


def _stager(profile: Profile, payload_format: str, path: Path, payload: str, records: list | None, progress):
    """A function that fills the stage table from the batch, streaming."""
    if payload_format == "json":
        records, first_row = records or ([], 1)
        header, rows, _ = json_rows(records, first_row)
        check_header(profile, header)
        mapper = Mapper(profile, header)
        return lambda cur: loader.copy_rows(cur, payload, _mapped(mapper, rows), progress)
    if payload_format == "xlsx":
        header, rows = read_xlsx(path)
        check_header(profile, header)
        mapper = Mapper(profile, header)
        return lambda cur: loader.copy_rows(cur, payload, _mapped(mapper, rows), progress)
    header, rows, encoding, delimiter = read_csv(path, profile)
    check_header(profile, header)
    if profile.is_plain_canonical:
        rows.close()  # COPY reads the file itself
        return lambda cur: loader.copy_csv_file(cur, path, header, encoding, delimiter, progress)
    mapper = Mapper(profile, header)
    return lambda cur: loader.copy_rows(cur, payload, _mapped(mapper, rows), progress)


def _mapped(mapper: Mapper, rows):
    for row_no, row in rows:
        for values in mapper.rows(row):
            yield row_no, values


def _ensure_partitions(months: list[str]) -> None:
    if not months:
        return
    with db.engine.begin() as conn:
        for month in months:
            conn.execute(text("SELECT analytics.ensure_event_partition(CAST(:m AS date))"), {"m": month})


def _parts(run: IngestRun, source: DataSource) -> list[tuple[Profile, str, tuple | None]]:
    """(profile, payload, (JSON records, first row number)) per part: files have one, pushes up to two."""
    profile = profile_for(source.mapping_profile, source.config)
    if run.payload_format != "json":
        return [(profile, profile.payload, None)]
    body = json.loads(Path(run.spool_path).read_text(encoding="utf-8"))
    parts, first_row = [], 1
    for payload, name in (("events", "canonical"), ("aggregates", "canonical-aggregates")):
        if body.get(payload):
            parts.append((profile_for(name), payload, (body[payload], first_row)))
            first_row += len(body[payload])
    return parts


def process_run(tenant_id: int, run_id: int) -> dict[str, Any]:
    """Load one run (the RQ job). Returns the counters."""
    settings = current_app.config["EGOV"]
    with tenant_transaction(tenant_id) as session:
        run = session.get(IngestRun, (tenant_id, run_id))
        if run is None or run.status in ("succeeded", "duplicate"):
            return {"status": run.status if run else "missing"}
        tenant = session.get(Tenant, tenant_id)
        source = session.get(DataSource, (tenant_id, run.data_source_id))
        if tenant.status != "active":
            _finish_failed(run, "The tenant is not active; data cannot be accepted.")
            return {"status": "failed"}
        salt = tenant_salt(session, settings)
        run.status, run.started_at, run.error = "running", datetime.now(UTC), None
        session.flush()
        session.expunge_all()
    progress = _progress_reporter()
    try:
        with db.engine.begin() as conn:
            result = loader.LoadResult()
            for profile, payload, records in _parts(run, source):
                stage = _stager(profile, run.payload_format, Path(run.spool_path), payload, records, progress)
                batch = loader.Batch(tenant_id, source.id, run_id, payload, salt)
                part = loader.load(conn, batch, stage, _ensure_partitions, progress)
                result = _add(result, part)
            _finish_succeeded(conn, tenant_id, run_id, result)
    except (ProfileError, UnicodeDecodeError, json.JSONDecodeError, psycopg.errors.DataError) as exc:
        # The batch itself is unusable: retrying cannot help.
        _record_failure(tenant_id, run_id, str(exc))
        return {"status": "failed", "error": str(exc)}
    except Exception as exc:
        log.exception("ingest run %s of tenant %s failed", run_id, tenant_id)
        _record_failure(tenant_id, run_id, f"{type(exc).__name__}: {exc}"[:1000], retrying=_will_retry())
        raise
    _discard(run.spool_path)
    progress("done", 1)
    log.info("ingest run %s of tenant %s: %s", run_id, tenant_id, result)
    return {"status": "succeeded", "rows_total": result.rows_total, "rows_accepted": result.rows_accepted,
            "rows_rejected": result.rows_rejected, "timings": result.timings}


def _add(a: loader.LoadResult, b: loader.LoadResult) -> loader.LoadResult:
    days_from = [d for d in (a.day_from, b.day_from) if d]
    days_to = [d for d in (a.day_to, b.day_to) if d]
    timings = {k: a.timings.get(k, 0) + b.timings.get(k, 0) for k in {*a.timings, *b.timings}}
    return loader.LoadResult(a.rows_total + b.rows_total, a.rows_accepted + b.rows_accepted,
                             a.rows_rejected + b.rows_rejected, min(days_from, default=None),
                             max(days_to, default=None), timings)


def _finish_succeeded(conn, tenant_id: int, run_id: int, result: loader.LoadResult) -> None:
    conn.execute(text(
        "UPDATE portal.ingest_runs SET status = 'succeeded', finished_at = now(), rows_total = :total, "
        "rows_accepted = :accepted, rows_rejected = :rejected, day_from = :day_from, day_to = :day_to, error = NULL, "
        "spool_path = NULL WHERE tenant_id = :tenant AND id = :run"
    ), {"total": result.rows_total, "accepted": result.rows_accepted, "rejected": result.rows_rejected,
        "day_from": result.day_from, "day_to": result.day_to, "tenant": tenant_id, "run": run_id})


def _finish_failed(run: IngestRun, message: str) -> None:
    run.status, run.error, run.finished_at = "failed", message, datetime.now(UTC)


def _will_retry() -> bool:
    from rq import get_current_job

    job = get_current_job()
    return bool(job and job.retries_left)


def _record_failure(tenant_id: int, run_id: int, message: str, retrying: bool = False) -> None:
    """Record why a run failed; a run RQ will try again stays queued (the health page shows the error)."""
    with tenant_transaction(tenant_id) as session:
        run = session.get(IngestRun, (tenant_id, run_id))
        if run is None:
            return
        _finish_failed(run, message)
        if retrying:
            run.status, run.finished_at = "queued", None


def run_now(tenant_id: int, run_id: int) -> dict[str, Any]:
    """Process a run in this process (CLI, demo data): the same code path as the job."""
    return process_run(tenant_id, run_id)


def load_file(tenant_id: int, source_id: int, path: Path, requested_by: str = "cli",
              filename: str | None = None) -> tuple[IngestRun, dict[str, Any]]:
    """Accept a file for a data source and load it at once (CLI, demo data, benchmark)."""
    suffix = path.suffix.lower()
    fmt = "xlsx" if suffix == ".xlsx" else "json" if suffix == ".json" else "csv"
    with path.open("rb") as fh:
        spooled, key = spool_bytes(tenant_id, iter(lambda: fh.read(1 << 20), b""), suffix)
    with tenant_transaction(tenant_id) as session:
        tenant = session.get(Tenant, tenant_id)
        source = session.get(DataSource, (tenant_id, source_id))
        run, new = accept_batch(session, tenant, source, key, spooled, fmt, filename or path.name, requested_by)
        run_id = run.id
    outcome = run_now(tenant_id, run_id) if new else {"status": "duplicate"}
    with tenant_transaction(tenant_id) as session:
        run = session.get(IngestRun, (tenant_id, run_id))
        session.expunge(run)
    return run, outcome



def run_status(run: IngestRun) -> dict[str, Any]:
    """What the upload page and the push API report about a run, including live progress."""
    status = {"run_id": run.id, "status": run.status, "filename": run.filename,
              "rows_total": run.rows_total, "rows_accepted": run.rows_accepted, "rows_rejected": run.rows_rejected,
              "error": run.error, "progress": None,
              "finished_at": run.finished_at.isoformat() if run.finished_at else None}
    if run.status in ("queued", "running") and run.job_id:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(run.job_id, connection=_redis())
            status["progress"] = job.get_meta(refresh=True).get("progress")
        except NoSuchJobError:
            pass
    return status


def retry_run(session, run: IngestRun) -> None:
    """Queue a failed run again (from the health page). Matomo pulls fetch again; files load from the spool."""
    if run.payload_format == "matomo":
        from ingest_workers import matomo

        run.status, run.error, run.finished_at = "queued", None, None
        session.flush()
        matomo.enqueue_run(run.tenant_id, run.id)
        return
    if not run.spool_path or not Path(run.spool_path).exists():
        raise IngestRefused("The data of this run is no longer there; send it again.")
    run.status, run.error, run.finished_at = "queued", None, None
    session.flush()
    enqueue_run(run.tenant_id, run.id)
