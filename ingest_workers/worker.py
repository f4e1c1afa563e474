"""The RQ worker process of the platform (``egov worker``).

Jobs run inside a Flask app context, so they use the same settings, data
layer and tenant hook as web requests. RQ forks a work-horse per job; a
forked child must not reuse the parent's pooled database connections (two
processes on one socket corrupt each other's results), so the horse drops
the inherited pool before it starts.
"""

from __future__ import annotations

from rq import Worker

from tenants.db import db


class AppWorker(Worker):
    app = None  # set by run_worker

    def main_work_horse(self, job, queue):
        with self.app.app_context():
            db.engine.dispose(close=False)
            return super().main_work_horse(job, queue)


def run_worker(app, queues: list[str], burst: bool = False, with_scheduler: bool = True) -> bool:
    from ingest_workers.jobs import redis_connection

    AppWorker.app = app
    connection = redis_connection(app.config["EGOV"].redis_url)
    worker = AppWorker(queues, connection=connection)
    with app.app_context():
        return worker.work(burst=burst, with_scheduler=with_scheduler)
