"""Opt-in per metric family and the peer group: tenant settings under row-level security.

Stored in ``portal.tenant_settings`` under the key ``benchmark``::

    {"families": {"usage": {"opted_in": true, "changed_at": "2026-11-22T09:00:00+00:00"}, ...},
     "peers": ["06531005", "06631009"]}

Nothing is opted in by default. Withdrawing takes effect at the next refresh
(the refresh job reads these settings afresh each time); until then the last
published figures still contain the tenant's values, which the page says.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenants import audit, tenant_state
from tenants.benchmark.metrics import FAMILIES
from tenants.errors import UserError
from tenants.models import Tenant

KEY = "benchmark"
#: A peer group may name at most this many tenants (the page lists them as check boxes).
MAX_PEERS = 60


class ParticipationError(UserError, ValueError):
    """A change that cannot be made; the message is for the user (German)."""


def _load(session: Session, tenant_id: int) -> dict:
    return tenant_state.load(session, tenant_id, KEY) or {}


def _store(session: Session, tenant_id: int, value: dict) -> None:
    tenant_state.save(session, tenant_id, KEY, value)


def families(session: Session, tenant_id: int) -> dict[str, dict]:
    """family -> {"opted_in": bool, "changed_at": iso string or None} for every family."""
    stored = _load(session, tenant_id).get("families", {})
    return {f: {"opted_in": bool(stored.get(f, {}).get("opted_in")), "changed_at": stored.get(f, {}).get("changed_at")}
            for f in FAMILIES}


def opted_in(session: Session, tenant_id: int) -> set[str]:
    return {f for f, state in families(session, tenant_id).items() if state["opted_in"]}


def set_families(session: Session, tenant_id: int, wanted: set[str], actor: str) -> tuple[set, set]:
    """Opt into exactly ``wanted``; returns (joined, withdrawn). Audited."""
    unknown = set(wanted) - set(FAMILIES)
    if unknown:
        raise ParticipationError("Unbekannter Vergleichsbereich: " + ", ".join(sorted(unknown)))
    value = _load(session, tenant_id)
    current = value.get("families", {})
    now = datetime.now(UTC).isoformat()
    joined = {f for f in wanted if not current.get(f, {}).get("opted_in")}
    withdrawn = {f for f in FAMILIES if current.get(f, {}).get("opted_in") and f not in wanted}
    for family in joined | withdrawn:
        current[family] = {"opted_in": family in joined, "changed_at": now}
    value["families"] = current
    _store(session, tenant_id, value)
    if joined or withdrawn:
        audit.record("benchmark.participation", actor=actor, tenant_id=tenant_id, target=",".join(sorted(wanted)),
                     details={"joined": sorted(joined), "withdrawn": sorted(withdrawn)}, session=session)
    return joined, withdrawn


def peers(session: Session, tenant_id: int) -> list[str]:
    """The AGS of the tenant's chosen peers."""
    return list(_load(session, tenant_id).get("peers", []))


def set_peers(session: Session, tenant_id: int, ags_list: list[str], actor: str) -> list[str]:
    """Choose the peer group by AGS; only registered tenants other than oneself are kept."""
    chosen = sorted(set(ags_list))
    if len(chosen) > MAX_PEERS:
        raise ParticipationError(f"Eine Vergleichsgruppe hat höchstens {MAX_PEERS} Mitglieder.")
    known = set(session.scalars(select(Tenant.ags).where(Tenant.ags.in_(chosen), Tenant.id != tenant_id)))
    kept = [ags for ags in chosen if ags in known]
    value = _load(session, tenant_id)
    value["peers"] = kept
    _store(session, tenant_id, value)
    audit.record("benchmark.peers", actor=actor, tenant_id=tenant_id, target=",".join(kept), session=session)
    return kept
