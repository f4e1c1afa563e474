"""Comparison refreshes record how many months they computed.

A month is compared once (issue 14), so most nightly refreshes have no month due and read no tenant;
``months`` tells the operator so (0: nothing due), where ``participants`` would only say 0. NULL for runs
before this migration. Aggregates only, no RLS (as the table).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE benchmark.refresh_runs ADD COLUMN months integer CHECK (months >= 0)")
    op.execute("COMMENT ON COLUMN benchmark.refresh_runs.months IS "
               "'Months computed by the run (0: none due, nothing read); NULL before revision 0016.'")


def downgrade() -> None:
    op.execute("ALTER TABLE benchmark.refresh_runs DROP COLUMN months")
