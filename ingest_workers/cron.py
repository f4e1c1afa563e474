"""The schedule for ``rq cron`` (started by ``make up``: ``rq cron ingest_workers.cron``).

One list, read top to bottom in the order the jobs run at night; each entry names its queue
and timeout. The scheduler only enqueues; workers run the jobs.
"""

from rq import cron

from ingest_workers.maintenance import ensure_partitions
from ingest_workers.matomo import pull_all_daily, refetch_pending
from ingest_workers.opendata import refresh_open_data
from tenants.ingest.runs import settle_all

# Every five minutes: every ingest run nobody works on (its worker or connection died) gets its
# due state, queued again or failed with the reason (tenants/ingest/runs.py, "Runs always end").
cron.register(settle_all, "high", cron="*/5 * * * *", job_timeout=120)

# Daily at 02:15; cheap and idempotent, so a missed run costs nothing.
cron.register(ensure_partitions, "low", cron="15 2 * * *", job_timeout=300)

# Daily at 02:30, after Matomo's own nightly archiving and before the jobs that publish the
# night's data: queue yesterday's pull of every active Matomo source (one job each; a pull
# replaces the day's figures, so a repeated or retried pull is harmless).
cron.register(pull_all_daily, "low", cron="30 2 * * *", job_timeout=600)

# Hourly: the recent days Matomo answered empty (not archived yet) are fetched again until it has them.
cron.register(refetch_pending, "low", cron="45 * * * *", job_timeout=600)

# Daily at 03:30, after the night's ingest: dct:modified follows the published content.
cron.register(refresh_open_data, "low", cron="30 3 * * *", job_timeout=1800)

from ingest_workers.benchmark import refresh_benchmarks  # noqa: E402

# Daily at 04:00, after the night's ingest and Open Data. The portal page names this time when a
# tenant withdraws ("takes effect at the next refresh").
cron.register(refresh_benchmarks, "low", cron="0 4 * * *", job_timeout=3600)
