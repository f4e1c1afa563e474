"""The schedule for ``rq cron`` (started by ``make up`` as ``egov scheduler``).

One list, read top to bottom; each entry names its queue and timeout.
The scheduler only enqueues; workers run the jobs.
"""

from rq import cron

from ingest_workers.maintenance import ensure_partitions

# Daily at 02:15; cheap and idempotent, so a missed run costs nothing.
cron.register(ensure_partitions, "low", cron="15 2 * * *", job_timeout=300)

from ingest_workers.opendata import refresh_open_data  # noqa: E402

# Daily at 03:30, after the night's ingest: dct:modified follows the published content.
cron.register(refresh_open_data, "low", cron="30 3 * * *", job_timeout=1800)

from ingest_workers.benchmark import refresh_benchmarks  # noqa: E402

# Daily at 04:00, after the night's ingest and Open Data. The portal page names this time when a
# tenant withdraws ("takes effect at the next refresh").
cron.register(refresh_benchmarks, "low", cron="0 4 * * *", job_timeout=3600)
