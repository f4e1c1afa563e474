"""RQ jobs and the ``rq cron`` schedule. See tenants/jobs.py for the facade."""
