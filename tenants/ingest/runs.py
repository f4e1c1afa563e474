"""Ingest runs: accept a batch once, load it in a job, and always end with a final state.

A batch (an uploaded file, a pushed body) is written to the spool directory
(``<EGOV_VAR_DIR>/spool/<tenant>/``, which portal and workers must share) and recorded as a run
with its batch key: the SHA-256 of an uploaded file, the sender's batch id for the push API.
The key is unique per data source, so the same batch sent twice is recognised and changes
nothing. A run that did not load (failed) may be sent again or retried from the health page.

:func:`process_run` is the RQ job. The load and the run's final status are one transaction; if
the work-horse is killed half-way, PostgreSQL rolls everything back.

Runs always end (docs/architecture.md, "Ingest"): every run is ``succeeded``, ``failed`` with a
reason, or ``queued`` for an attempt that will happen. An attempt holds a PostgreSQL advisory lock
on its run (:func:`run_lock`) on its own connection for as long as it works; the lock dies with
the worker, its connection or its database backend, so "running" is a fact the database can be
asked about, not a guess from timestamps. :func:`settle_runs` gives every queued or running run
that nobody works on its due state: queued again (while attempts remain) or failed with the
reason. It runs when a work-horse died (``AppWorker``), when a worker starts, every few minutes
(``rq cron``), and when the health page or a run's status is looked at.

Errors are told apart (:func:`is_transient`): a lost connection, a deadlock, a shutdown are
tried again (``RETRIES``, back-off ``RETRY_DELAYS``); a file that cannot be read or any other
error is not, and fails at once with its reason. Stored errors are English message ids with
arguments (``error``, ``error_args``), shown in the reader's language by :func:`error_text`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from tenants.context import current_tenant_id, platform_transaction, tenant_transaction
from tenants.db import after_commit, db
from tenants.errors import UserError
from tenants.ingest import loader
from tenants.ingest.privacy import tenant_salt
from tenants.ingest.profiles import (
    Mapper,
    Profile,
    ProfileError,
    Table,
    check_header,
    header_key,
    json_rows,
    profile_for,
    read_table,
)
from tenants.jobs import redis_connection
from tenants.models import DataSource, IngestRun, Tenant
from tenants.registry import is_ingest_allowed
from tenants.settings import get_settings

log = logging.getLogger(__name__)

QUEUE = "default"
TIMEOUT = 3600
RETRIES = 3
#: Seconds before each retry; tests shorten them.
RETRY_DELAYS = [10, 60, 300]
PROGRESS_EVERY = 1.0  # seconds between progress updates in Redis
#: The advisory lock of run N is the bigint key RUN_LOCKS + N (the two-int keys of the loader's
#: per-tenant lock are a separate key space).
RUN_LOCKS = 4_005 << 40
#: How long a freshly died work-horse's database backend may take to notice and let go.
SETTLE_WAIT_MS = 10_000
FINAL = ("succeeded", "failed", "duplicate")

NOT_ACTIVE = "The tenant is not active; data cannot be accepted."
SPOOL_GONE = "The data of this run is no longer there; send it again."
INTERRUPTED = "The load was interrupted (%(detail)s); it is tried again."
GAVE_UP = "The load was interrupted %(attempts)s times (%(detail)s). Send the data again or retry."
FAILED = "The load failed: %(detail)s"
WORKER_GONE = "the worker stopped"


class IngestRefused(UserError, ValueError):
    """A batch that cannot be accepted at all; the message is for the sender."""


class TransientError(RuntimeError):
    """A failure that may pass (a source system that is briefly down): the job is tried again."""


# -- accepting a batch ----------------------------------------------------------------------------

def spool_dir(tenant_id: int) -> Path:
    path = Path(get_settings().var_dir) / "spool" / str(int(tenant_id))
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


def require_ingest_allowed(tenant: Tenant) -> None:
    """:raise IngestRefused: when the tenant may not receive data (``registry.is_ingest_allowed``)."""
    if not is_ingest_allowed(tenant):
        raise IngestRefused(NOT_ACTIVE)


def accept_batch(session, tenant: Tenant, source: DataSource, batch_key: str, spool_path: Path, payload_format: str,
                 filename: str | None = None, requested_by: str | None = None) -> tuple[IngestRun, bool]:
    """Record a batch; ``(run, True)`` when it is new (or one that did not load, sent again), else the earlier run.

    A run that looks unfinished is settled first: one whose worker died is failed or queued again,
    so sending its data again never answers "loaded before" for data that was not loaded.
    Call inside ``tenant_transaction(tenant.id)``; queue a new run with :func:`enqueue_after_commit`.
    """
    require_ingest_allowed(tenant)
    if not source.active:
        raise IngestRefused("The data source is switched off.")
    existing = session.scalar(select(IngestRun).where(IngestRun.data_source_id == source.id,
                                                      IngestRun.batch_key == batch_key))
    if existing is not None and existing.status in ("queued", "running"):
        settle_runs(session, [existing])
    if existing is not None and existing.status != "failed":
        spool_path.unlink(missing_ok=True)
        return existing, False
    if existing is not None:
        _discard(existing.spool_path)
        _requeue(existing, reset=True)
        existing.spool_path = str(spool_path)
        existing.filename, existing.payload_format, existing.requested_by = filename, payload_format, requested_by
        existing.started_at = None
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
    run.job_id = job_id_for(run)
    session.flush()
    return run, True


def job_id_for(run: IngestRun) -> str:
    """The RQ job id of the run's next attempt: a new one per attempt, so a stale job never hides it."""
    prefix = "matomo" if run.payload_format == "matomo" else "ingest"
    return f"{prefix}-{int(run.tenant_id)}-{int(run.id)}-{int(run.attempts or 0)}"


def enqueue_after_commit(session, run: IngestRun) -> None:
    """Queue the run's load once the session's transaction has committed (nothing if it rolls back)."""
    tenant_id, run_id = int(run.tenant_id), int(run.id)
    after_commit(session, lambda: enqueue_run(tenant_id, run_id))


def enqueue_run(tenant_id: int, run_id: int) -> str:
    """Queue the load of a run; call after the run's transaction has committed."""
    from tenants.jobs import enqueue

    # A session of its own: the caller's (a web request's) may have begun its next transaction.
    with Session(db.engine) as own, tenant_transaction(tenant_id, own) as session:
        run = session.get(IngestRun, (tenant_id, run_id))
        job_id, matomo = run.job_id or job_id_for(run), run.payload_format == "matomo"
    if matomo:
        from tenants.ingest import matomo as pull

        return pull.enqueue_run(tenant_id, run_id, job_id)
    job = enqueue(process_run, tenant_id, run_id, queue=QUEUE, timeout=TIMEOUT, retries=RETRIES,
                  retry_delays=RETRY_DELAYS, job_id=job_id)
    return job.id



def _discard(path: str | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)


# -- errors ---------------------------------------------------------------------------------------

#: SQLSTATE classes that pass: connection (08), rollback/deadlock (40), resources (53), shutdown or
#: cancel (57), system/I-O (58); and "lock not available".
TRANSIENT_STATES = ("08", "40", "53", "57", "58", "55P03")


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may help: the database, Redis or the network was away, not the data wrong."""
    import redis
    import requests

    if isinstance(exc, DBAPIError):
        exc = exc.orig or exc
    if isinstance(exc, TransientError | redis.exceptions.ConnectionError | redis.exceptions.TimeoutError
                  | requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        return (not state and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)) or \
            state.startswith(TRANSIENT_STATES)
    return False


def _detail(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, TransientError):
        return str(exc)[:500]
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:500]


def error_text(message: str | None, args: dict[str, Any] | None = None) -> str | None:
    """A stored message id with its arguments, in the reader's language (English outside Flask).

    A date format (``%d.%m.%Y``) is shown the way people write it (TT.MM.JJJJ in German).
    """
    if not message:
        return message
    args = dict(args or {})
    from flask import has_request_context

    if not has_request_context():
        return message % args if args else message
    from flask_babel import gettext

    if "format" in args:
        args["format"] = readable_format(args["format"])
    if args.get("detail") == WORKER_GONE:
        args["detail"] = gettext(WORKER_GONE)
    return gettext(message, **args)


def readable_format(fmt: str) -> str:
    """``%d.%m.%Y %H:%M`` -> ``TT.MM.JJJJ hh:mm`` (in the reader's language)."""
    from flask_babel import gettext

    tokens = {"%d": gettext("DD"), "%m": "MM", "%Y": gettext("YYYY"), "%y": gettext("YY"), "%H": "hh",
              "%M": "mm", "%S": "ss"}
    for code, shown in tokens.items():
        fmt = fmt.replace(code, shown)
    return fmt


# -- the job --------------------------------------------------------------------------------------

def run_lock(run_id: int) -> int:
    return RUN_LOCKS + int(run_id)


@contextmanager
def attempt(tenant_id: int, run_id: int) -> Iterator[tuple[Any, Session]]:
    """A connection of this attempt alone, holding the run's lock (waiting while an earlier attempt
    still holds it, e.g. the backend of a killed work-horse that has not yet noticed), and an ORM
    session on it. The lock goes with the connection, whatever ends the attempt."""
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": run_lock(run_id)})
        conn.commit()
        try:
            yield conn, Session(bind=conn)
        finally:
            try:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": run_lock(run_id)})
                conn.commit()
            except Exception:  # noqa: BLE001 - a dead connection: its lock died with it
                conn.invalidate()


def claim(session: Session, tenant_id: int, run_id: int, max_attempts: int) -> IngestRun | None:
    """Mark the run running for this attempt; None when there is nothing (more) to do.

    A run that is final is left alone; one whose attempts are used up fails with the reason.
    """
    with tenant_transaction(tenant_id, session) as s:
        run = s.get(IngestRun, (tenant_id, run_id))
        if run is None or run.status in FINAL:
            return None
        if not is_ingest_allowed(s.get(Tenant, tenant_id)):
            _fail(run, NOT_ACTIVE)
            return None
        if run.attempts >= max_attempts:
            _fail(run, GAVE_UP, attempts=run.attempts, detail=run.error_args.get("detail", WORKER_GONE)
                  if run.error_args else WORKER_GONE)
            return None
        run.status, run.error, run.error_args = "running", None, None
        run.attempts += 1
        run.started_at = _clock(s)
        s.flush()
        s.expunge(run)
        return run


def _clock(session) -> datetime:
    """The database's time now (``now()`` would be the start of the transaction)."""
    return session.execute(text("SELECT clock_timestamp()")).scalar()


def process_run(tenant_id: int, run_id: int) -> dict[str, Any]:
    """Load one run (the RQ job). Returns the counters."""
    settings = get_settings()
    progress = _progress_reporter()
    with attempt(tenant_id, run_id) as (conn, session):
        run = claim(session, tenant_id, run_id, RETRIES + 1)
        if run is None:
            return {"status": "nothing to do"}
        try:
            with tenant_transaction(tenant_id, session) as s:
                source = s.get(DataSource, (tenant_id, run.data_source_id))
                s.expunge(source)
                salt = tenant_salt(s, settings)
            if not run.spool_path or not Path(run.spool_path).exists():
                raise ProfileError(SPOOL_GONE)
            with conn.begin():
                result = loader.LoadResult()
                for profile, payload, records in _parts(run, source):
                    stage, headers = _stager(profile, run.payload_format, Path(run.spool_path), payload, records,
                                             progress)
                    batch = loader.Batch(tenant_id, source.id, run_id, payload, salt, headers)
                    part = loader.load(conn, batch, stage, _ensure_partitions, progress)
                    result = _add(result, part)
                _finish_succeeded(conn, tenant_id, run_id, result)
        except Exception as exc:  # noqa: BLE001 - every failure ends in a recorded state
            return failed_attempt(tenant_id, run_id, exc, RETRIES + 1)
    _discard(run.spool_path)
    progress("done", 1)
    log.info("ingest run %s of tenant %s: %s", run_id, tenant_id, result)
    return {"status": "succeeded", "rows_total": result.rows_total, "rows_accepted": result.rows_accepted,
            "rows_rejected": result.rows_rejected, "timings": result.timings}


def failed_attempt(tenant_id: int, run_id: int, exc: Exception, max_attempts: int) -> dict[str, Any]:
    """Record why an attempt failed. Transient: queued for the retry RQ will make (the exception is
    raised again for it), or failed when none is left. Anything else: failed at once."""
    if hasattr(exc, "args_dict"):  # ProfileError, MatomoError: a message for the user
        message, args = exc.message, exc.args_dict
    elif is_transient(exc):
        log.warning("ingest run %s of tenant %s interrupted: %s", run_id, tenant_id, _detail(exc))
        retrying = _will_retry()
        record_outcome(tenant_id, run_id, "queued" if retrying else "failed",
                       INTERRUPTED if retrying else GAVE_UP, {"detail": _detail(exc), "attempts": max_attempts})
        raise exc
    elif isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
        message, args = FAILED, {"detail": _detail(exc)}
    else:
        log.exception("ingest run %s of tenant %s failed", run_id, tenant_id)
        message, args = FAILED, {"detail": _detail(exc)}
    record_outcome(tenant_id, run_id, "failed", message, args)
    return {"status": "failed", "error": error_text(message, args)}


def record_outcome(tenant_id: int, run_id: int, status: str, message: str, args: dict[str, Any] | None) -> None:
    """Write a run's state and error on a fresh connection (the attempt's own may be the one that broke)."""
    with tenant_transaction(tenant_id) as session:
        run = session.get(IngestRun, (tenant_id, run_id))
        if run is None or run.status in FINAL:
            return
        run.status, run.error, run.error_args = status, message, args or None
        run.finished_at = _clock(session) if status == "failed" else None


def _fail(run: IngestRun, message: str, **args: Any) -> None:
    run.status, run.error, run.error_args = "failed", message, args or None
    run.finished_at = datetime.now(UTC)


def _will_retry() -> bool:
    from rq import get_current_job

    job = get_current_job()
    return bool(job and job.retries_left)


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



def _stager(profile: Profile, payload_format: str, path: Path, payload: str, records: tuple | None, progress
            ) -> tuple[Callable[[object], None], dict[str, str]]:
    """A function that fills the stage table from the batch, streaming; and the file's header per column.

    A canonical CSV whose header is its first line streams into COPY as it is; when COPY cannot
    read it (a short line, a NUL byte, a byte foreign to its encoding), the savepoint is rolled
    back and the file is staged row by row, where each such row is rejected on its own.
    """
    if payload_format == "json":
        # The API refused unknown fields; a missing one is "required" for each object that lacks it.
        records, first_row = records or ([], 1)
        table = json_rows(records, first_row)
    else:
        table = read_table(path, payload_format, profile)
        try:
            check_header(profile, table)
        except ProfileError:
            table.close()
            raise
    headers = _file_headers(profile, table.header)
    columns = _copy_columns(profile, table)
    if columns is None:
        mapper = Mapper(profile, table.header)
        return (lambda cur: loader.copy_rows(cur, payload, _mapped(mapper, table.rows), progress)), headers
    table.close()  # COPY reads the file itself

    def stage(cur) -> None:
        cur.execute("SAVEPOINT copy_file")
        try:
            loader.copy_csv_file(cur, path, columns, table.encoding, table.delimiter, table.data_offset, progress)
        except psycopg.errors.DataError as exc:
            log.info("%s: COPY cannot read the file as it is (%s); staging it row by row", path.name, exc)
            cur.execute("ROLLBACK TO SAVEPOINT copy_file")
            again = read_table(path, payload_format, profile)
            loader.copy_rows(cur, payload, _mapped(Mapper(profile, again.header), again.rows), progress)
        else:
            cur.execute("RELEASE SAVEPOINT copy_file")

    return stage, headers


def _copy_columns(profile: Profile, table: Table) -> list[str] | None:
    """The canonical names of a plain canonical CSV's columns when COPY can stream it, else None."""
    if not profile.is_plain_canonical or table.data_offset is None:
        return None
    canonical = {header_key(c): c for c in profile.canonical_columns}
    columns = [canonical.get(header_key(h)) for h in table.header]
    if None in columns or len(set(columns)) != len(columns):
        return None
    return columns


def _file_headers(profile: Profile, header: list[str]) -> dict[str, str]:
    """canonical column -> the header as the file writes it (errors name the file's columns)."""
    spelled = {header_key(h): h for h in header if h}
    source = profile.columns or {c: c for c in profile.canonical_columns}
    return {canon: spelled.get(header_key(src), src) for canon, src in source.items()}


def _mapped(mapper: Mapper, rows):
    for row_no, row in rows:
        for values in mapper.rows(row):
            yield row_no, values



def _ensure_partitions(months: list) -> None:
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


def _add(a: loader.LoadResult, b: loader.LoadResult) -> loader.LoadResult:
    days_from = [d for d in (a.day_from, b.day_from) if d]
    days_to = [d for d in (a.day_to, b.day_to) if d]
    timings = {k: a.timings.get(k, 0) + b.timings.get(k, 0) for k in {*a.timings, *b.timings}}
    return loader.LoadResult(a.rows_total + b.rows_total, a.rows_accepted + b.rows_accepted,
                             a.rows_rejected + b.rows_rejected, min(days_from, default=None),
                             max(days_to, default=None), timings)


def _finish_succeeded(conn, tenant_id: int, run_id: int, result: loader.LoadResult) -> None:
    # clock_timestamp(): the moment the load ends (now() is when its transaction began).
    conn.execute(text(
        "UPDATE portal.ingest_runs SET status = 'succeeded', finished_at = clock_timestamp(), rows_total = :total, "
        "rows_accepted = :accepted, rows_rejected = :rejected, day_from = :day_from, day_to = :day_to, error = NULL, "
        "error_args = NULL, spool_path = NULL WHERE tenant_id = :tenant AND id = :run"
    ), {"total": result.rows_total, "accepted": result.rows_accepted, "rejected": result.rows_rejected,
        "day_from": result.day_from, "day_to": result.day_to, "tenant": tenant_id, "run": run_id})


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


# -- settling runs nobody works on ----------------------------------------------------------------

def _job_state(job_id: str | None) -> str | None:
    """RQ's status of a job ("queued", "scheduled", "started", "failed", …), "gone" without one, None if unsure."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if not job_id:
        return "gone"
    try:
        status = Job.fetch(job_id, connection=redis_connection()).get_status(refresh=True)
    except NoSuchJobError:
        return "gone"
    except Exception:  # noqa: BLE001 - Redis away: do not judge runs on no evidence
        return None
    return str(getattr(status, "value", status))


WAITING = ("queued", "scheduled", "deferred")


def _worked_on(session, run: IngestRun, wait_ms: int) -> bool:
    """Whether an attempt holds the run's lock. Taking it (for this transaction) means nobody does,
    and keeps a new attempt from starting while the run is being settled."""
    if wait_ms:
        session.execute(text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": f"{wait_ms}ms"})
        try:
            with session.begin_nested():
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": run_lock(run.id)})
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "55P03":
                return True
            raise
        return False
    return not session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": run_lock(run.id)}).scalar()


def settle_runs(session, runs: list[IngestRun], wait_ms: int = 0) -> list[int]:
    """Give each of ``runs`` that nobody works on its due state; returns the ids to enqueue after commit.

    * running, but no attempt holds its lock (the worker, its connection or the backend died): if
      RQ has its job waiting (a retry after a killed work-horse), queued; otherwise (no job, or
      one a dead worker left "started") queued again with a new job while attempts remain, else
      failed with the reason;
    * queued, but RQ has no job that will run it (lost between commit and enqueue, Redis flushed,
      the job failed without a word): the same.

    Call in the run's tenant transaction. Needs Redis to judge queued runs; without it they stay.
    """
    requeue = []
    for run in runs:
        if run.status not in ("queued", "running"):
            continue
        if run.status == "running" and _worked_on(session, run, wait_ms):
            continue
        state = _job_state(run.job_id)
        # A queued run's job may have just started; a running run's "started" job is a dead one
        # (nobody holds the lock): its worker was killed as a whole.
        if state is None or (run.status == "queued" and state in (*WAITING, "started")):
            continue
        if run.attempts >= _max_attempts(run):
            _fail(run, GAVE_UP, attempts=run.attempts, detail=WORKER_GONE)
        elif state in WAITING:  # RQ retries a killed work-horse's job by itself
            run.status, run.error, run.error_args = "queued", INTERRUPTED, {"detail": WORKER_GONE}
        else:
            _requeue(run)
            run.error, run.error_args = INTERRUPTED, {"detail": WORKER_GONE}
            requeue.append(run.id)
    session.flush()
    return requeue


def _max_attempts(run: IngestRun) -> int:
    if run.payload_format == "matomo":
        from tenants.ingest import matomo

        return matomo.RETRIES + 1
    return RETRIES + 1


def _requeue(run: IngestRun, reset: bool = False) -> None:
    if reset:
        run.attempts = 0
    run.status, run.error, run.error_args, run.finished_at = "queued", None, None, None
    run.job_id = job_id_for(run)


def settle_tenant(tenant_id: int, wait_ms: int = 0) -> int:
    """Settle every unfinished run of one tenant and queue what is due; returns how many were queued."""
    with tenant_transaction(tenant_id) as session:
        unfinished = list(session.scalars(select(IngestRun).where(IngestRun.status.in_(("queued", "running")))))
        due = settle_runs(session, unfinished, wait_ms)
        enqueue_due(session, due)
    return len(due)


def enqueue_due(session, run_ids: list[int]) -> None:
    """Queue the runs :func:`settle_runs` made due, once the session's transaction has committed."""
    for run_id in run_ids:
        enqueue_after_commit(session, session.get(IngestRun, (current_tenant_id(), run_id)))


def settle_all() -> int:
    """The scheduled job (and a worker's start): settle the unfinished runs of every tenant."""
    with platform_transaction() as session:
        tenant_ids = list(session.scalars(select(Tenant.id)))
    return sum(settle_tenant(tenant_id) for tenant_id in tenant_ids)


def settle_job(job_id: str) -> None:
    """After RQ saw a work-horse die: settle the run of that job (waiting briefly for its backend)."""
    parts = job_id.split("-")
    if len(parts) < 3 or parts[0] not in ("ingest", "matomo") or not (parts[1].isdigit() and parts[2].isdigit()):
        return
    tenant_id, run_id = int(parts[1]), int(parts[2])
    with tenant_transaction(tenant_id) as session:
        run = session.get(IngestRun, (tenant_id, run_id))
        enqueue_due(session, settle_runs(session, [run], SETTLE_WAIT_MS) if run else [])


# -- status and retry -----------------------------------------------------------------------------

def run_status(run: IngestRun) -> dict[str, Any]:
    """What the upload page and the push API report about a run, including live progress."""
    status = {"run_id": run.id, "status": run.status, "filename": run.filename,
              "rows_total": run.rows_total, "rows_accepted": run.rows_accepted, "rows_rejected": run.rows_rejected,
              "error": error_text(run.error, run.error_args), "progress": None,
              "finished_at": run.finished_at.isoformat() if run.finished_at else None}
    if run.status in ("queued", "running") and run.job_id:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(run.job_id, connection=redis_connection())
            status["progress"] = job.get_meta(refresh=True).get("progress")
        except NoSuchJobError:
            pass
    return status


def retry_run(session, run: IngestRun) -> None:
    """Make a run due again now (health page): a failed one, or a queued one waiting for its retry.

    Matomo pulls fetch again; files load from the spool. A run an attempt works on is refused.
    The run is queued when the session's transaction commits.
    """
    settle_runs(session, [run])
    if run.status == "running":
        raise IngestRefused("The run is being loaded right now.")
    if run.status not in ("failed", "queued"):
        raise IngestRefused("Only a run that did not load can be retried.")
    if run.payload_format != "matomo" and (not run.spool_path or not Path(run.spool_path).exists()):
        raise IngestRefused(SPOOL_GONE)
    _requeue(run, reset=True)
    session.flush()
    enqueue_after_commit(session, run)
