"""Ingest you can trust: errors with arguments, attempts of a run, partitions only for plausible months.

* ``portal.ingest_errors.args`` and ``portal.ingest_runs.error_args``: a rejected row's reason and a
  run's error are English message ids with ``%(name)s`` placeholders (shown translated); these hold
  the values (e.g. the date format the source's profile expects).
* ``portal.ingest_runs.attempts``: how often a worker started loading the run. A run whose worker
  died is queued again while attempts remain, and failed with a reason after the last one
  (tenants/ingest/runs.py, "Runs always end").
* ``analytics.ensure_event_partition``: partitions are bounded in UTC whatever the session's time
  zone (before, the bounds followed the time zone of the session that happened to create a
  partition), and only plausible months get one: from the UTC month of 2015-01-01 00:00 German time
  (the earliest accepted event) to two months ahead (the scheduler prepares this and the next two
  months). Anything else is refused, so a typo in a year can never leave a partition behind.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# {guard} refuses a month, {bounds} are the partition's bounds (migration 0001 wrote them as plain
# dates, read in the time zone of whichever session created the partition).
PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION analytics.ensure_event_partition(month_in date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, analytics AS $$
DECLARE
    first_day date := date_trunc('month', month_in)::date;
    part text := format('process_events_%s', to_char(first_day, 'YYYY_MM'));
BEGIN
    {guard}
    IF to_regclass(format('analytics.%I', part)) IS NULL THEN
        EXECUTE format('CREATE TABLE analytics.%I PARTITION OF analytics.process_events '
                       'FOR VALUES FROM (%L) TO (%L)', part, {bounds});
        EXECUTE format('ALTER TABLE analytics.%I ENABLE ROW LEVEL SECURITY', part);
        EXECUTE format('ALTER TABLE analytics.%I FORCE ROW LEVEL SECURITY', part);
        EXECUTE format('CREATE POLICY tenant_isolation ON analytics.%I '
                       'USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::integer) '
                       'WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::integer)',
                       part);
    END IF;
    RETURN part;
END $$;
"""

PLAUSIBLE = """IF first_day < DATE '2014-12-01'
       OR first_day > (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months')::date THEN
        RAISE EXCEPTION 'no partition for %: not a plausible month', to_char(first_day, 'YYYY-MM');
    END IF;"""
UTC_BOUNDS = "first_day::text || ' 00:00:00+00', (first_day + interval '1 month')::date::text || ' 00:00:00+00'"
OLD_BOUNDS = "first_day, (first_day + interval '1 month')::date"


def upgrade() -> None:
    op.execute("ALTER TABLE portal.ingest_errors ADD COLUMN args jsonb")
    op.execute("ALTER TABLE portal.ingest_runs ADD COLUMN error_args jsonb, "
               "ADD COLUMN attempts integer NOT NULL DEFAULT 0")
    op.execute(PARTITION_FUNCTION.replace("{guard}", PLAUSIBLE).replace("{bounds}", UTC_BOUNDS))


def downgrade() -> None:
    op.execute(PARTITION_FUNCTION.replace("{guard}", "").replace("{bounds}", OLD_BOUNDS))
    op.execute("ALTER TABLE portal.ingest_runs DROP COLUMN attempts, DROP COLUMN error_args")
    op.execute("ALTER TABLE portal.ingest_errors DROP COLUMN args")
