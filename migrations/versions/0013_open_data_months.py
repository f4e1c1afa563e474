"""Open Data: the audited suppression decisions of each month, so downloads need not recompute them.

Protecting a tenant's datasets ends with the disclosure audit (tenants/opendata/audit.py): an
integer program per withheld count, seconds to minutes for a large tenant. The decisions of one
month depend only on that month's counts, the links between tables and the rules, so they are
kept per tenant and month with a digest of exactly those inputs: a download reuses them while
the digest matches, and new or late data recompute only the months they touch. ``withheld``
lists every withheld count of the month with its reason ({table: [[*figure key, reason]]});
``checked`` is how many sensitive counts the audit checked. Only months that passed the audit are
kept. Tenant data, RLS.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from alembic import op

from migrations.rls import grant_app, protect_tenant_table

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLE = "portal.open_data_months"


def upgrade() -> None:
    op.execute("""
CREATE TABLE portal.open_data_months (
    tenant_id integer NOT NULL REFERENCES portal.tenants (id),
    month date NOT NULL,
    data_digest text NOT NULL,
    withheld jsonb NOT NULL DEFAULT '[]',
    checked integer NOT NULL DEFAULT 0,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, month)
);
COMMENT ON TABLE portal.open_data_months IS
    'Open Data: audited suppression decisions per tenant and month, keyed by a digest of their inputs '
    '(tenant data, RLS).';
""")
    protect_tenant_table(TABLE)
    grant_app(TABLE)


def downgrade() -> None:
    op.execute(f"DROP TABLE {TABLE}")
