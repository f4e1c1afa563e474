"""Identity: claims read by path, no lock-out, break-glass.

* ``identity_providers.email_claim``: the claim (or path) that carries the e-mail address or
  user name checked against the tenant's domains (``upn`` for Entra ID accounts without a
  mailbox). Default ``email``.
* ``users.last_claims``: the claims of the member's last sign-in (without the token's own
  fields). A change of the identity-provider settings is simulated on them, so a change that
  would leave the tenant without an administrator who can sign in is refused before it is saved.
* ``users.bound_to``: ``<issuer> <client id>`` the subject belongs to. After the tenant moves
  to another provider (or another client, whose subjects differ, as Entra ID's pairwise ones
  do), a member is found again by the e-mail address at the first sign-in through the new one.
* ``users.subject`` may be NULL: an operator's break-glass grant names an e-mail address of
  someone who has not signed in yet; the first sign-in with that address takes the row.
* ``portal.identity_provider_versions``: every saved version of the settings (client secret
  encrypted, so ``egov secrets rotate`` finds it by its column name), for the operators'
  restore of a working version.

Existing members have no ``bound_to`` yet: it is written at their next sign-in, or, for all of a
tenant's members at once, when the tenant moves to another provider (``tenants.identity``), so no
data migration has to set the tenant (only ``tenants/context.py`` does).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from alembic import op

from migrations.rls import grant_app, protect_tenant_table

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

VERSIONS = "portal.identity_provider_versions"


def upgrade() -> None:
    op.execute("ALTER TABLE portal.identity_providers ADD COLUMN email_claim text NOT NULL DEFAULT 'email'")
    op.execute("ALTER TABLE portal.users ADD COLUMN last_claims jsonb")
    op.execute("ALTER TABLE portal.users ADD COLUMN bound_to text")
    op.execute("ALTER TABLE portal.users ALTER COLUMN subject DROP NOT NULL")
    op.execute(f"""
        CREATE TABLE {VERSIONS} (
            tenant_id integer NOT NULL REFERENCES portal.tenants (id),
            version integer NOT NULL,
            saved_at timestamptz NOT NULL DEFAULT now(),
            saved_by text NOT NULL,
            note text,
            discovery_url text NOT NULL,
            client_id text NOT NULL,
            client_secret_encrypted text NOT NULL,
            scopes text NOT NULL,
            role_claim text NOT NULL,
            email_claim text NOT NULL,
            role_mapping jsonb NOT NULL DEFAULT '{{}}',
            default_role text CHECK (default_role IN ('viewer', 'editor', 'admin')),
            issuer text,
            domains text[] NOT NULL DEFAULT '{{}}',
            PRIMARY KEY (tenant_id, version)
        )""")
    protect_tenant_table(VERSIONS)
    grant_app(VERSIONS)  # UPDATE: egov secrets rotate re-encrypts the stored secrets
    op.execute(f"COMMENT ON TABLE {VERSIONS} IS 'Every saved version of a tenant''s identity-provider settings "
               "(break-glass restore by operators).'")


def downgrade() -> None:
    op.execute(f"DROP TABLE {VERSIONS}")
    op.execute("DELETE FROM portal.users WHERE subject IS NULL")
    op.execute("ALTER TABLE portal.users ALTER COLUMN subject SET NOT NULL")
    op.execute("ALTER TABLE portal.users DROP COLUMN bound_to")
    op.execute("ALTER TABLE portal.users DROP COLUMN last_claims")
    op.execute("ALTER TABLE portal.identity_providers DROP COLUMN email_claim")
