"""Jobs through the facade, run by the real worker (forked work-horse, app context)."""

from datetime import date

from sqlalchemy import text

from ingest_workers.maintenance import ensure_partitions
from ingest_workers.worker import run_worker
from tenants.jobs import enqueue, get_queue, queue_state


def test_worker_runs_partition_job_in_app_context(app, owner_engine, redis_conn, clean_db):
    job = enqueue(ensure_partitions, months_ahead=1, today=date(2025, 5, 20), queue="low", timeout=60,
                  connection=redis_conn)
    assert queue_state(redis_conn, ("low",))["queues"]["low"]["queued"] == 1
    run_worker(app, ["low"], burst=True, with_scheduler=False)
    job.refresh()
    assert job.get_status() == "finished", job.latest_result().exc_string if job.latest_result() else None
    assert job.return_value() == ["process_events_2025_05", "process_events_2025_06"]
    with owner_engine.connect() as conn:
        forced = conn.execute(text(
            "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'process_events_2025_06'"
        )).scalar()
    assert forced is True


def test_same_job_id_is_not_queued_twice(redis_conn, clean_db):
    first = enqueue(ensure_partitions, job_id="partitions-once", queue="low", connection=redis_conn)
    second = enqueue(ensure_partitions, job_id="partitions-once", queue="low", connection=redis_conn)
    assert first.id == second.id
    assert get_queue("low", redis_conn).count == 1


def test_failed_job_is_reported_with_its_error(app, redis_conn, clean_db):
    enqueue(ensure_partitions, months_ahead="many", queue="low", connection=redis_conn)
    run_worker(app, ["low"], burst=True, with_scheduler=False)
    assert queue_state(redis_conn, ("low",))["queues"]["low"]["failed"] == 1


def test_cron_schedule_registers_its_jobs(redis_conn):
    from tests.conftest import scheduled_jobs

    entry = scheduled_jobs(redis_conn)["ingest_workers.maintenance.ensure_partitions"]
    assert (entry.cron, entry.queue_name, entry.job_options["job_timeout"]) == ("15 2 * * *", "low", 300)


def test_positional_and_keyword_arguments_reach_the_job(app, redis_conn, clean_db):
    job = enqueue(ensure_partitions, 0, today=date(2025, 8, 20), queue="low", timeout=60, connection=redis_conn)
    run_worker(app, ["low"], burst=True, with_scheduler=False)
    job.refresh()
    assert job.return_value() == ["process_events_2025_08"]
