"""The RQ worker process of the platform (``egov worker``).

Jobs run inside a Flask app context, so they use the same settings, data
layer and tenant hook as web requests. RQ forks a work-horse per job; a
forked child must not reuse the parent's pooled database connections (two
processes on one socket corrupt each other's results), so the horse drops
the inherited pool before it starts.
"""

from __future__ import annotations

import logging

from rq import Worker

from tenants.db import db

log = logging.getLogger(__name__)


class AppWorker(Worker):
    app = None  # set by run_worker

    def main_work_horse(self, job, queue):
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


def run_worker(app, queues: list[str], burst: bool = False, with_scheduler: bool = True) -> bool:
    from tenants.jobs import redis_connection

    AppWorker.app = app
    connection = redis_connection(app.config["EGOV"].redis_url)
    worker = AppWorker(queues, connection=connection)
    with app.app_context():
        _settle_on_start()
        return worker.work(burst=burst, with_scheduler=with_scheduler)


def _settle_on_start() -> None:
    """Runs left behind by a worker that was killed as a whole get their due state at once."""
    from tenants.ingest.runs import settle_all

    try:
        settle_all()
    except Exception:  # noqa: BLE001 - the scheduled settling catches up
        log.exception("settling unfinished ingest runs at start failed")
