"""Open Data: which datasets a tenant publishes, under which licence, since when.

One row per tenant and dataset. Withdrawing keeps the row (status
``withdrawn``), so the dataset's URLs can answer 410 Gone instead of 404 and
the catalogue can drop it. ``data_hash`` / ``data_modified_at`` record when
the published content last changed (ETag, Last-Modified, dct:modified).

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from migrations.rls import grant_app, protect_tenant_table

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "portal.open_data_publications"


def upgrade() -> None:
    op.execute("""
CREATE TABLE portal.open_data_publications (
    tenant_id integer NOT NULL REFERENCES portal.tenants (id),
    dataset text NOT NULL CHECK (dataset IN ('usage', 'completion', 'payment', 'authentication', 'satisfaction')),
    licence text NOT NULL DEFAULT 'dl-by-de/2.0' CHECK (licence IN ('dl-by-de/2.0', 'dl-zero-de/2.0', 'cc-by/4.0')),
    state text NOT NULL DEFAULT 'published' CHECK (state IN ('published', 'withdrawn')),
    contact_email text NOT NULL CHECK (contact_email ~ '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'),
    attribution text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz,
    data_hash text,
    data_modified_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, dataset)
);
COMMENT ON TABLE portal.open_data_publications IS
    'Open Data publication state per tenant and dataset (tenant data, RLS).';
""")
    protect_tenant_table(TABLE)
    grant_app(TABLE)


def downgrade() -> None:
    op.execute(f"DROP TABLE {TABLE}")
