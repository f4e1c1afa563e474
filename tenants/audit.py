"""The audit log: who did what, when, from which address.

Actions on a tenant go to that tenant's ``portal.audit_log`` (under its
row-level security, so a tenant admin sees only their own); actions outside
any tenant (operator sign-in, a refused sign-in nobody can be attributed to)
go to ``portal.platform_audit_log``. Callers pass the actor as a short string
(see :func:`actor_of`) and the client address; nothing here reads the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, or_, select

from tenants.context import platform_acting_for
from tenants.db import db
from tenants.models import AuditEvent, PlatformAuditEvent


def actor_of(principal) -> str:
    """``user:<id> <e-mail>``, ``operator:<id> <e-mail>`` or ``anonymous``."""
    if principal is None or not getattr(principal, "is_authenticated", False):
        return "anonymous"
    if principal.is_operator:
        return f"operator:{principal.operator.id} {principal.operator.email}"
    return f"user:{principal.user.id} {principal.user.email}"


def record(action: str, *, actor: str, tenant_id: int | None = None, target: str | None = None,
           details: dict[str, Any] | None = None, remote_addr: str | None = None, session=None) -> None:
    """Add an entry in the current transaction (it commits with the action it records).

    ``session``: a tenant transaction of ``tenant_id`` the caller holds (jobs, core functions on a session);
    without it the entry goes into the request's session, for the given tenant or, without one, the platform.
    """
    values = {"actor": actor, "action": action, "target": target, "details": details or {},
              "remote_addr": remote_addr}
    if session is not None and tenant_id is not None:
        session.add(AuditEvent(tenant_id=tenant_id, **values))
        session.flush()
        return
    if tenant_id is None:
        db.session.add(PlatformAuditEvent(**values))
        db.session.flush()
        return
    with platform_acting_for(tenant_id):
        db.session.add(AuditEvent(tenant_id=tenant_id, **values))
        db.session.flush()


@dataclass(frozen=True)
class Filter:
    """What an audit page asks for: ``action`` (an exact code, "" for all), ``text`` (part of who, object
    or address, case-insensitive), ``since``/``until`` (German calendar days, both included), ``page`` (1-based)."""

    action: str = ""
    text: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1


PER_PAGE = 50


def search(model, wanted: Filter, tenant_id: int | None = None,
           per_page: int = PER_PAGE) -> tuple[list, bool, list[str]]:
    """One page of ``model``'s entries (AuditEvent of ``tenant_id``, read under its RLS, or
    PlatformAuditEvent), newest first: ``(events, has_next_page, action codes there are to choose from)``."""
    scope = [model.tenant_id == tenant_id] if model is AuditEvent else []
    query = select(model).where(*scope)
    if wanted.action:
        query = query.where(model.action == wanted.action)
    if wanted.text:
        pattern = "%" + wanted.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(model.actor.ilike(pattern), model.target.ilike(pattern),
                                cast(model.remote_addr, Text).ilike(pattern)))
    if wanted.since:
        query = query.where(model.occurred_at >= _berlin_midnight(wanted.since))
    if wanted.until:
        query = query.where(model.occurred_at < _berlin_midnight(wanted.until + timedelta(days=1)))
    page = max(wanted.page, 1)
    rows = list(db.session.scalars(query.order_by(model.occurred_at.desc(), model.id.desc())
                                   .offset((page - 1) * per_page).limit(per_page + 1)))
    actions = list(db.session.scalars(select(model.action).where(*scope).distinct().order_by(model.action)))
    return rows[:per_page], len(rows) > per_page, actions


def _berlin_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo("Europe/Berlin"))


def recent_events(tenant_id: int, limit: int = 200) -> list[AuditEvent]:
    """The tenant's latest entries, newest first (the caller runs in the tenant's context)."""
    query = (select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
             .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit))
    return list(db.session.scalars(query))
