"""Benchmarks: replace the figures without maintaining their key row by row.

The nightly refresh writes about 1.3 million figure rows at Hessen's full
scale. COPY into the table with its primary key in place took 8–11 s (every
row a btree insertion under a linguistic collation); COPY into the bare table
and building the key afterwards takes about 3 s. The application role does
not own the table and may not alter it, so two SECURITY DEFINER functions
without parameters do exactly these two steps and nothing else. They run
inside the refresh's transaction: readers see the old figures until it
commits, and a failed refresh leaves the old figures and their key in place.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from alembic import op

from migrations.rls import app_role

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION benchmark.clear_figures() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, benchmark AS $$
BEGIN
    TRUNCATE benchmark.figures, benchmark.groups;
    ALTER TABLE benchmark.figures DROP CONSTRAINT IF EXISTS figures_pkey;
END $$;

CREATE FUNCTION benchmark.index_figures() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, benchmark AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'figures_pkey'
                   AND conrelid = 'benchmark.figures'::regclass) THEN
        ALTER TABLE benchmark.figures ADD CONSTRAINT figures_pkey PRIMARY KEY (service_key, month, group_key, metric);
    END IF;
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    for function in ("benchmark.clear_figures()", "benchmark.index_figures()"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION benchmark.clear_figures(), benchmark.index_figures()")
