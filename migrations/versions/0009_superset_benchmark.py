"""Superset reads the published comparison figures: ``benchmark.figures`` and ``benchmark.groups``.

The Superset "Vergleich" dataset (superset_config/dashboards/datasets.json)
joins the published group figures to the tenant's own rows. Superset reaches
the database only as the tenant's login role, a member of the group
``<database>_ss_readers`` (migration 0004), so the group gets USAGE on the
schema and SELECT on those two tables. Both hold group figures only (no
``tenant_id``, withheld cells are NULL), which every tenant may read, also in
SQL Lab (docs/benchmark.md). ``benchmark.refresh_runs`` stays closed: it
tells operators how the nightly job went and is no business of a tenant.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = "benchmark.figures, benchmark.groups"


def _for_group(statement: str) -> None:
    """Run ``statement`` (with ``%I`` for the group) for this database's Superset readers."""
    op.execute(f"DO $$ BEGIN EXECUTE format('{statement}', portal.superset_group()); END $$")


def upgrade() -> None:
    _for_group("GRANT USAGE ON SCHEMA benchmark TO %I")
    _for_group(f"GRANT SELECT ON {TABLES} TO %I")


def downgrade() -> None:
    _for_group(f"REVOKE SELECT ON {TABLES} FROM %I")  # noqa: S608 - constant table names
    _for_group("REVOKE USAGE ON SCHEMA benchmark FROM %I")
