"""The RQ worker process of the platform (``egov worker``).

Jobs run inside a Flask app context, so they use the same settings, data
layer and tenant hook as web requests. RQ forks a work-horse per job; a
forked child must not reuse the parent's pooled database connections (two
processes on one socket corrupt each other's results), so the horse drops
the inherited pool before it starts.
"""

from __future__ import annotations

import logging
import time

from rq import Worker

from tenants.db import db

log = logging.getLogger(__name__)

#: Job functions that moved (the re-layout of issue 17). RQ stores a job's function as its dotted path, so an
#: upload or Matomo pull queued by the previous release names the old place; after an upgrade the new workers
#: run it from the new one (tests/test_upgrade_drill.py). Add a line whenever a job function moves.
MOVED_JOBS = {
    "ingest_workers.runs.process_run": "tenants.ingest.runs.process_run",
    "ingest_workers.matomo.pull_run": "tenants.ingest.matomo.pull_run",
}


def follow_moved(job) -> None:
    """Point a job that names a moved function at its new place (its arguments are read first: RQ forgets
    them when the name is set)."""
    moved = MOVED_JOBS.get(job.func_name)
    if moved:
        job.args  # noqa: B018 - loads the arguments before the name is replaced
        job.func_name = moved


class AppWorker(Worker):
    app = None  # set by run_worker

    def execute_job(self, job, queue):
        """Run the job in a work-horse, then record its figures here (``tenants/metrics.py``):
        the horse's own process ends with the job, and its memory with it."""
        from tenants.logs import current_job_id

        started = time.monotonic()
        token = current_job_id.set(job.id)  # the work-horse is forked inside and keeps it
        try:
            return super().execute_job(job, queue)
        finally:
            current_job_id.reset(token)
            try:
                record_job(job, time.monotonic() - started)
            except Exception:  # noqa: BLE001 - a figure lost must not stop the worker
                log.exception("recording the metrics of job %s failed", job.id)

    def main_work_horse(self, job, queue):
        follow_moved(job)
        with self.app.app_context():
            db.engine.dispose(close=False)
            return super().main_work_horse(job, queue)

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string="", execution=None):
        """After RQ handled a failed job (a retry or the failed registry): if the job was an ingest
        run whose work-horse died without a word, give the run its due state now."""
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
        if exc_string.startswith("Work-horse terminated"):
            from tenants.ingest.runs import settle_job

            try:
                settle_job(job.id)
            except Exception:  # noqa: BLE001 - the scheduled settling catches up; the worker goes on
                log.exception("settling the run of job %s failed", job.id)


def record_job(job, seconds: float) -> None:
    """Count an ended job by its function's name and status; an ingest run also by its rows and outcome."""
    from rq.job import JobStatus

    from tenants import metrics

    status = job.get_status(refresh=True)
    status = str(getattr(status, "value", status))
    if status in (JobStatus.SCHEDULED.value, JobStatus.QUEUED.value):  # failed, tried again (later)
        status = "retried"
    name = (job.func_name or "unknown").rsplit(".", 1)[-1]
    metrics.JOBS.labels(name, status).inc()
    metrics.JOB_SECONDS.labels(name, status).observe(seconds)
    result = job.latest_result()
    value = result.return_value if result is not None and status == "finished" else None
    if not job.id.startswith(("ingest-", "matomo-")):
        return
    outcome = value.get("status") if isinstance(value, dict) else "failed" if status == "failed" else None
    if outcome not in ("succeeded", "failed"):  # nothing to do (a duplicate job), or to be retried
        return
    metrics.INGEST_RUNS.labels(outcome).inc()
    metrics.INGEST_RUN_SECONDS.labels(outcome).observe(seconds)
    if outcome == "succeeded":
        accepted = value.get("rows_accepted", value.get("rows", 0))
        metrics.INGEST_ROWS.labels("accepted").inc(accepted)
        metrics.INGEST_ROWS.labels("rejected").inc(value.get("rows_rejected", 0))


def run_worker(app, queues: list[str], burst: bool = False, with_scheduler: bool = True, settle: bool = True) -> bool:
    """Work on ``queues`` (until they are empty with ``burst``).

    :param settle: first give ingest runs a dead worker left behind their due state (always in
        production; a test whose data has made-up runs leaves it out).
    """
    from tenants.jobs import redis_connection
    from tenants.settings import settings_of

    AppWorker.app = app
    connection = redis_connection(settings_of(app).redis_url)
    # Job descriptions hold the job's arguments (an operator's address, for one): the log names the job id only.
    worker = AppWorker(queues, connection=connection, log_job_description=False)
    with app.app_context():
        if settle:
            _settle_on_start()
        return worker.work(burst=burst, with_scheduler=with_scheduler)


def _settle_on_start() -> None:
    """Runs left behind by a worker that was killed as a whole get their due state at once."""
    from tenants.ingest.runs import settle_all

    try:
        settle_all()
    except Exception:  # noqa: BLE001 - the scheduled settling catches up
        log.exception("settling unfinished ingest runs at start failed")
