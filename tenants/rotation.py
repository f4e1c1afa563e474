"""Key rotation for secrets at rest: re-encrypt every stored secret with the newest key.

Every column whose name ends in ``_encrypted`` in the ``portal`` and
``analytics`` schemas is found in the catalogue, so secrets added by later
migrations are covered. Tenant tables are walked tenant by tenant in each
tenant's own context (they are under row-level security); tables without
``tenant_id`` once with no tenant. See docs/operations.md for the procedure.
"""

from __future__ import annotations

from psycopg import sql
from sqlalchemy import select, text

from tenants import crypto
from tenants.context import platform_transaction, tenant_transaction
from tenants.models import Tenant
from tenants.settings import Settings

ENCRYPTED_COLUMNS = text(
    """
    SELECT n.nspname, c.relname, a.attname,
           EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id'
                   AND NOT t.attisdropped) AS per_tenant
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('portal', 'analytics') AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND a.attname LIKE '%\\_encrypted' AND NOT a.attisdropped
    ORDER BY 1, 2, 3
    """
)


def _rotate_column(session, settings: Settings, schema: str, table: str, column: str) -> int:
    """Rows are addressed by ctid, which is stable inside the one transaction that reads and writes them."""
    raw = session.connection().connection.dbapi_connection
    name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    col = sql.Identifier(column)
    with raw.cursor() as cur:
        cur.execute(sql.SQL("SELECT ctid::text, {} FROM {} WHERE {} IS NOT NULL").format(col, name, col))
        rows = cur.fetchall()
        for ctid, token in rows:
            cur.execute(sql.SQL("UPDATE {} SET {} = %s WHERE ctid = %s::tid").format(name, col),
                        (crypto.rotate(settings, token), ctid))
    return len(rows)


def rotate_stored_secrets(settings: Settings) -> int:
    """Re-encrypt every stored secret with the first key of ``EGOV_ENCRYPTION_KEYS``; returns how many.

    :raise crypto.SecretError: a value cannot be decrypted with any configured
        key (nothing of that tenant's transaction is written then).
    """
    with platform_transaction() as session:
        columns = list(session.execute(ENCRYPTED_COLUMNS))
        tenant_ids = list(session.scalars(select(Tenant.id).order_by(Tenant.id)))
        count = sum(_rotate_column(session, settings, s, t, c) for s, t, c, per_tenant in columns if not per_tenant)
    for tenant_id in tenant_ids:
        with tenant_transaction(tenant_id) as session:
            count += sum(_rotate_column(session, settings, s, t, c) for s, t, c, per_tenant in columns if per_tenant)
    return count
