"""Identity: pinned issuer and default role of a tenant's IdP; roles pinned by a tenant admin.

* ``identity_providers.issuer``: the issuer the connection test saw when the
  settings were saved. Discovery documents and ID tokens must name exactly
  this issuer, so a discovery URL that starts answering for another issuer
  (a hijacked host, a mix-up) is refused.
* ``identity_providers.default_role``: the role of a user whose claims map to
  no role; NULL refuses such users.
* ``users.role_pinned``: a tenant admin changed the role in the portal; sign-ins
  no longer overwrite it from the IdP's claims.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE portal.identity_providers ADD COLUMN issuer text")
    op.execute(
        "ALTER TABLE portal.identity_providers ADD COLUMN default_role text "
        "CHECK (default_role IN ('viewer', 'editor', 'admin'))"
    )
    op.execute("ALTER TABLE portal.users ADD COLUMN role_pinned boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE portal.users DROP COLUMN role_pinned")
    op.execute("ALTER TABLE portal.identity_providers DROP COLUMN default_role")
    op.execute("ALTER TABLE portal.identity_providers DROP COLUMN issuer")
