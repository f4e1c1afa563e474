"""RQ jobs and the ``rq cron`` schedule. See ingest_workers/jobs.py for the facade."""
