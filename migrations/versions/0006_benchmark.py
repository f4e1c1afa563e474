"""Benchmarks: the ``benchmark`` schema, holding published comparison figures only.

Nothing in this schema belongs to one tenant: no ``tenant_id``, no tenant's
own value, only group figures that passed the confidentiality rules
(docs/benchmark.md). That is why it has no row-level security, and why a
read-only role (``egov_benchmark`` by default, created by ``egov db
bootstrap``) may read all of it and nothing else.

Opt-ins and peer groups are tenant data and live in ``portal.tenant_settings``
(RLS), read by the refresh job one tenant transaction at a time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from alembic import op

from migrations.rls import app_role

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ["benchmark.refresh_runs", "benchmark.groups", "benchmark.figures"]


def upgrade() -> None:
    app = app_role()
    reader = op.get_context().config.attributes.get("benchmark_role", "egov_benchmark")
    op.execute("CREATE SCHEMA benchmark")
    op.execute("""
CREATE TABLE benchmark.refresh_runs (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    participants integer NOT NULL DEFAULT 0,
    figures integer NOT NULL DEFAULT 0,
    error text
);
COMMENT ON TABLE benchmark.refresh_runs IS
    'Benchmark refreshes: when, how many participants, how many figures. Aggregates only, no RLS.';

CREATE TABLE benchmark.groups (
    group_key text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('hessen', 'kreis', 'size', 'peer')),
    label text NOT NULL
);
COMMENT ON TABLE benchmark.groups IS
    'Comparison groups of the last refresh (labels only, no membership). No RLS.';

CREATE TABLE benchmark.figures (
    group_key text NOT NULL,
    service_key char(14) NOT NULL CHECK (service_key ~ '^99[0-9]{12}$'),
    month date NOT NULL,
    metric text NOT NULL,
    contributors_band integer NOT NULL,
    q1 double precision,
    median double precision,
    q3 double precision,
    mode_label text,
    suppressed text NOT NULL DEFAULT '',
    -- The page reads one service and month for a handful of groups; one index, no foreign key:
    -- the nightly COPY of about a million rows is the cost that matters.
    PRIMARY KEY (service_key, month, group_key, metric)
);
COMMENT ON TABLE benchmark.figures IS
    'Published group figures (window quartiles) per LeiKa service, month and metric; '
    'withheld ones are NULL and named in suppressed. Aggregates only, no RLS.';
""")
    op.execute(f"GRANT USAGE ON SCHEMA benchmark TO {app}, {reader}")
    op.execute(f"GRANT SELECT ON {', '.join(TABLES)} TO {reader}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {', '.join(TABLES)} TO {app}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA benchmark TO {app}")


def downgrade() -> None:
    op.execute("DROP SCHEMA benchmark CASCADE")
