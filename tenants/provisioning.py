"""Provisioning a tenant: an ordered list of idempotent steps, run as one RQ job.

Other parts of the platform add their steps with :func:`register_step` at
import time (Superset objects, database login roles, ingest secrets, …);
``provision_tenant`` runs them in order. Every step must be idempotent, so
the job can simply run again after a failure or when a step was added later
(this is how existing tenants receive new steps). ``deprovision_tenant``
undoes the steps in reverse order when a tenant is offboarded.

Progress is stored per tenant (``portal.tenant_settings``, key
``provisioning``) after every step, so operators can watch it and see the
error of a failed step.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenants import tenant_state
from tenants.context import tenant_transaction

STATE_KEY = "provisioning"


@dataclass(frozen=True)
class Step:
    name: str
    provision: Callable[[int], None]
    deprovision: Callable[[int], None] | None
    order: int


_STEPS: dict[str, Step] = {}


def register_step(name: str, provision: Callable[[int], None],
                  deprovision: Callable[[int], None] | None = None, order: int = 100) -> Step:
    """Add a step; both callables take the tenant id and open their own transactions."""
    step = Step(name, provision, deprovision, order)
    _STEPS[name] = step
    return step


def registered_steps() -> list[Step]:
    return sorted(_STEPS.values(), key=lambda s: (s.order, s.name))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _save_state(tenant_id: int, state: dict[str, Any]) -> None:
    with tenant_transaction(tenant_id) as session:
        tenant_state.save(session, tenant_id, STATE_KEY, state)


def provisioning_state(tenant_id: int) -> dict[str, Any] | None:
    """The last recorded run: ``{"action", "status", "started_at", "finished_at", "steps": [...]}``."""
    with tenant_transaction(tenant_id) as session:
        return tenant_state.load(session, tenant_id, STATE_KEY)


def _run(tenant_id: int, action: str, steps: list[tuple[str, Callable[[int], None] | None]]) -> dict[str, Any]:
    state: dict[str, Any] = {"action": action, "status": "running", "started_at": _now(), "finished_at": None,
                             "steps": [{"name": name, "status": "pending"} for name, _ in steps]}
    _save_state(tenant_id, state)
    for entry, (_, func) in zip(state["steps"], steps, strict=True):
        entry["status"] = "running"
        _save_state(tenant_id, state)
        try:
            if func is not None:
                func(tenant_id)
        except Exception as exc:
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                         trace=traceback.format_exc(limit=5))
            state.update(status="failed", finished_at=_now())
            _save_state(tenant_id, state)
            raise
        entry.update(status="done", finished_at=_now())
    state.update(status="succeeded", finished_at=_now())
    _save_state(tenant_id, state)
    return state


def provision_tenant(tenant_id: int) -> dict[str, Any]:
    """The provisioning job: run every registered step for the tenant, in order."""
    return _run(tenant_id, "provision", [(s.name, s.provision) for s in registered_steps()])


def deprovision_tenant(tenant_id: int) -> dict[str, Any]:
    """Undo every step, in reverse order (offboarding)."""
    return _run(tenant_id, "deprovision", [(s.name, s.deprovision) for s in reversed(registered_steps())])
