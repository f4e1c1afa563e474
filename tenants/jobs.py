"""A thin, documented facade over RQ (in the manner of ckan/lib/jobs.py).

Everything that puts work on a queue goes through :func:`enqueue`, so every
job gets an explicit timeout, a bounded result lifetime and a failure TTL,
and job functions are plain functions that take their tenant as an argument
(never from process state). Tests run jobs with ``SimpleWorker`` in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from tenants.settings import get_settings

#: Results are read by the page that started the job, shortly after.
RESULT_TTL = 24 * 3600
#: Failed jobs stay visible to operators for a week.
FAILURE_TTL = 7 * 24 * 3600


#: One client per Redis URL and process: a client holds a connection pool, and building one per call (the run
#: page polls every second) opened a new pool each time. redis-py's pool notices a fork and starts afresh in the
#: child, so RQ's work horses share nothing with their parent.
_CLIENTS: dict[str, Redis] = {}


def redis_connection(url: str | None = None) -> Redis:
    """The process's Redis client for ``url`` (default: the settings' ``EGOV_REDIS_URL``), built once and reused.

    Queues, sessions, rate-limit-free counters, OIDC state and health checks all use this; nothing else builds a
    Redis client.
    """
    url = url or get_settings().redis_url
    client = _CLIENTS.get(url)
    if client is None:
        client = _CLIENTS[url] = Redis.from_url(url)
    return client


def get_queue(name: str = "default", connection: Redis | None = None) -> Queue:
    return Queue(name, connection=connection or redis_connection())


def enqueue(func: Callable[..., Any], *args: Any, queue: str = "default", timeout: int = 600,
            retries: int = 0, job_id: str | None = None, connection: Redis | None = None,
            retry_delays: list[int] | None = None, **kwargs: Any) -> Job:
    """Queue ``func(*args, **kwargs)``.

    :param timeout: seconds before the worker kills the job; always explicit,
        because a stuck import must not hold a worker for ever.
    :param retries: how often a failed job is tried again (with back-off).
    :param retry_delays: seconds before each retry (default 10, 60, 300).
    :param job_id: makes the job unique: enqueueing the same id again while
        the first is queued or running returns the existing job.
    """
    q = get_queue(queue, connection)
    delays = (retry_delays if retry_delays is not None else [10, 60, 300])[:retries]
    if job_id:
        try:
            existing = Job.fetch(job_id, connection=q.connection)
        except NoSuchJobError:
            existing = None
        if existing is not None and existing.get_status() in ("queued", "started", "deferred", "scheduled"):
            return existing
    # Positional and keyword arguments both go explicitly: RQ refuses extra
    # positional arguments once ``kwargs=`` is given.
    return q.enqueue(
        func, args=args, job_timeout=timeout, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
        retry=Retry(max=retries, interval=delays or None) if retries else None,
        job_id=job_id, kwargs=kwargs or None,
    )


def queue_state(connection: Redis, queue_names: tuple[str, ...]) -> dict[str, Any]:
    """What operators and /healthz need to know about the queues."""
    from rq.cron import CronScheduler
    from rq.registry import FailedJobRegistry, StartedJobRegistry
    from rq.worker import Worker

    queues = {}
    for name in queue_names:
        q = Queue(name, connection=connection)
        queues[name] = {
            "queued": q.count,
            "running": StartedJobRegistry(queue=q).count,
            "failed": FailedJobRegistry(queue=q).count,
        }
    schedulers = CronScheduler.all(connection)
    return {
        "queues": queues,
        "workers": Worker.count(connection=connection),
        "schedulers": len(schedulers),
    }
