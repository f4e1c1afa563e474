"""The schedule for ``rq cron`` (started by ``make up`` as ``egov scheduler``).

One list, read top to bottom; each entry names its queue and timeout.
The scheduler only enqueues; workers run the jobs.
"""

from rq import cron

from ingest_workers.maintenance import ensure_partitions
from ingest_workers.matomo import pull_all_daily

# Daily at 02:15; cheap and idempotent, so a missed run costs nothing.
cron.register(ensure_partitions, "low", cron="15 2 * * *", job_timeout=300)
# Daily at 02:30, after Matomo's own nightly archiving and before the jobs that publish the
# night's data: queue yesterday's pull of every active Matomo source (one job each; a pull
# replaces the day's figures, so a repeated or retried pull is harmless).
cron.register(pull_all_daily, "low", cron="30 2 * * *", job_timeout=600)
