"""Per-tenant stored state: small JSON documents under a key in ``portal.tenant_settings``.

The one way to read and write them (provisioning progress, Superset provisioning, comparison participation,
the pseudonymisation salt). Every function works in the caller's session and transaction, which must be the
tenant's (the table is under row-level security); none opens or commits a transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from tenants.models import TenantSetting


def load(session, tenant_id: int, key: str) -> dict[str, Any] | None:
    """A copy of the value stored under ``key``, or None when there is none."""
    setting = session.get(TenantSetting, (tenant_id, key))
    return dict(setting.value) if setting is not None else None


def save(session, tenant_id: int, key: str, value: dict[str, Any]) -> None:
    """Store ``value`` under ``key``, replacing what was there (one statement, safe against a parallel save)."""
    stmt = insert(TenantSetting).values(tenant_id=tenant_id, key=key, value=value)
    session.execute(stmt.on_conflict_do_update(index_elements=[TenantSetting.tenant_id, TenantSetting.key],
                                               set_={"value": stmt.excluded.value, "updated_at": datetime.now(UTC)}))
    # A row the session already holds must show the new value on the next load.
    session.expire_all()


def add(session, tenant_id: int, key: str, value: dict[str, Any]) -> None:
    """Store ``value`` under a key that must not exist yet (a secret created once: two racing creators must not
    both win). :raise sqlalchemy.exc.IntegrityError: when it exists (at the flush)."""
    session.add(TenantSetting(tenant_id=tenant_id, key=key, value=value))
    session.flush()
