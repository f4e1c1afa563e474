"""Ingest: canonical vocabularies, a time-ordered event key, per-row errors, push tokens.

* ``analytics.process_events`` gets the key ``(tenant_id, occurred_at, event_id)``: loads arrive
  roughly in time order, so the key grows at its right edge instead of at random places (a
  uuid-first key), and it serves the tenant + time range queries, so the separate
  ``(tenant_id, occurred_at)`` index goes away: one index to maintain per row instead of two.
* The vocabularies of docs/data-format.md become CHECK constraints (the empty string means
  "not applicable" in the aggregate and rollup keys).
* ``portal.ingest_errors`` keeps the rejected rows of a run (row number, column, reason; never
  the value, which may be personal data).
* ``portal.ingest_runs`` records where the spooled payload lies and what it holds.

Revision ID: 0003
Revises: 0001
"""

from alembic import op

from migrations.rls import grant_app, protect_tenant_table

revision = "0003"
down_revision = "0004"
branch_labels = None
depends_on = None

PAYMENT_METHODS = ("paypal", "credit_card", "sepa_direct_debit", "giropay", "paydirekt", "wero", "invoice",
                   "on_site", "free_of_charge", "other")
PAYMENT_PROVIDERS = ("epaybl", "pmpayment", "girosolution", "epay21", "other")
AUTH_METHODS = ("none", "bundid_basis", "bundid_elster", "bundid_eid", "eu_eid", "muk_elster", "other")


def _in(values, empty: bool = False) -> str:
    listed = ", ".join(f"'{v}'" for v in values + (("",) if empty else ()))
    return f"IN ({listed})"


def _vocabulary_checks() -> list[str]:
    pay, prov, auth = _in(PAYMENT_METHODS), _in(PAYMENT_PROVIDERS), _in(AUTH_METHODS)
    pay_e, prov_e, auth_e = (_in(PAYMENT_METHODS, True), _in(PAYMENT_PROVIDERS, True), _in(AUTH_METHODS, True))
    return [
        f"ALTER TABLE analytics.process_events ADD CONSTRAINT ck_process_events_payment_method "
        f"CHECK (payment_method {pay})",
        f"ALTER TABLE analytics.process_events ADD CONSTRAINT ck_process_events_payment_provider "
        f"CHECK (payment_provider {prov})",
        f"ALTER TABLE analytics.process_events ADD CONSTRAINT ck_process_events_auth_method CHECK (auth_method {auth})",
        "ALTER TABLE analytics.process_events ADD CONSTRAINT ck_process_events_step_no "
        "CHECK (step_no BETWEEN 0 AND 999)",
        f"ALTER TABLE analytics.daily_aggregates ADD CONSTRAINT ck_daily_aggregates_payment_method "
        f"CHECK (payment_method {pay_e})",
        f"ALTER TABLE analytics.daily_aggregates ADD CONSTRAINT ck_daily_aggregates_auth_method "
        f"CHECK (auth_method {auth_e})",
        "ALTER TABLE analytics.daily_aggregates ADD CONSTRAINT ck_daily_aggregates_channel "
        "CHECK (channel IN ('web', 'ios', 'android', ''))",
        "ALTER TABLE analytics.daily_aggregates ADD CONSTRAINT ck_daily_aggregates_trust_level "
        "CHECK (trust_level IN ('none', 'basis', 'substanziell', 'hoch', ''))",
        f"ALTER TABLE analytics.rollup_payment_daily ADD CONSTRAINT ck_rollup_payment_daily_method "
        f"CHECK (payment_method {pay})",
        f"ALTER TABLE analytics.rollup_payment_daily ADD CONSTRAINT ck_rollup_payment_daily_provider "
        f"CHECK (payment_provider {prov_e})",
        f"ALTER TABLE analytics.rollup_auth_daily ADD CONSTRAINT ck_rollup_auth_daily_method "
        f"CHECK (auth_method {auth})",
    ]


INGEST_ERRORS = """
CREATE TABLE portal.ingest_errors (
    tenant_id integer NOT NULL,
    run_id bigint NOT NULL,
    row_no bigint NOT NULL,
    column_name text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (tenant_id, run_id, row_no),
    FOREIGN KEY (tenant_id, run_id) REFERENCES portal.ingest_runs (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE portal.ingest_errors IS
    'Rejected rows of an ingest run: row number, column, reason. Never the value (it may be personal data).';
"""

RUN_COLUMNS = """
ALTER TABLE portal.ingest_runs
    ADD COLUMN payload_format text NOT NULL DEFAULT 'csv' CHECK (payload_format IN ('csv', 'xlsx', 'json', 'matomo')),
    ADD COLUMN spool_path text,
    ADD COLUMN requested_by text,
    ADD COLUMN day_from date,
    ADD COLUMN day_to date;
CREATE INDEX ix_ingest_runs_tenant_created ON portal.ingest_runs (tenant_id, created_at DESC);
ALTER TABLE portal.data_sources ADD COLUMN token_created_at timestamptz;
"""


def upgrade() -> None:
    op.execute("ALTER TABLE analytics.process_events DROP CONSTRAINT process_events_pkey")
    op.execute("ALTER TABLE analytics.process_events ADD PRIMARY KEY (tenant_id, occurred_at, event_id)")
    op.execute("DROP INDEX analytics.ix_process_events_tenant_time")
    for statement in _vocabulary_checks():
        op.execute(statement)
    op.execute(RUN_COLUMNS)
    op.execute(INGEST_ERRORS)
    protect_tenant_table("portal.ingest_errors")
    grant_app("portal.ingest_errors")


def downgrade() -> None:
    op.execute("DROP TABLE portal.ingest_errors")
    op.execute("ALTER TABLE portal.data_sources DROP COLUMN token_created_at")
    op.execute("DROP INDEX portal.ix_ingest_runs_tenant_created")
    op.execute("ALTER TABLE portal.ingest_runs DROP COLUMN payload_format, DROP COLUMN spool_path, "
               "DROP COLUMN requested_by, DROP COLUMN day_from, DROP COLUMN day_to")
    for table, name in [("process_events", "payment_method"), ("process_events", "payment_provider"),
                        ("process_events", "auth_method"), ("process_events", "step_no"),
                        ("daily_aggregates", "payment_method"), ("daily_aggregates", "auth_method"),
                        ("daily_aggregates", "channel"), ("daily_aggregates", "trust_level"),
                        ("rollup_payment_daily", "method"), ("rollup_payment_daily", "provider"),
                        ("rollup_auth_daily", "method")]:
        op.execute(f"ALTER TABLE analytics.{table} DROP CONSTRAINT ck_{table}_{name}")
    op.execute("ALTER TABLE analytics.process_events DROP CONSTRAINT process_events_pkey")
    op.execute("ALTER TABLE analytics.process_events ADD PRIMARY KEY (tenant_id, event_id, occurred_at)")
    op.execute("CREATE INDEX ix_process_events_tenant_time ON analytics.process_events (tenant_id, occurred_at)")
