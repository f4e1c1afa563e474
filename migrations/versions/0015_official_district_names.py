"""District tenants carry their official name: "Landkreis Bergstraße", not the register's "Bergstraße".

The reference data is loaded with the official names from now on (``tenants.refdata.district_name``,
``egov refdata load`` after the migrations brings ``portal.regions`` up to date); tenants copied their
name at sign-up, so existing district tenants are renamed here by the same rule. Control plane, no RLS.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        UPDATE portal.tenants t SET name = 'Landkreis ' || t.name
        FROM portal.regions r
        WHERE r.ags = t.ags AND r.kind = 'landkreis'
          AND t.name NOT ILIKE '%kreis' AND t.name NOT LIKE 'Landkreis %'
    """)


def downgrade() -> None:
    op.execute("""
        UPDATE portal.tenants t SET name = substr(t.name, length('Landkreis ') + 1)
        FROM portal.regions r
        WHERE r.ags = t.ags AND r.kind = 'landkreis' AND t.name LIKE 'Landkreis %'
    """)
