"""Comparisons in the demo: about 40 further Hessian municipalities of every size, all opted in.

They are chosen so that Marburg's comparisons have content: 14 municipalities of the Landkreis
Marburg-Biedenkopf (enough for quartiles), every city of Marburg's size class (50,000 to 100,000), and
small, middle and large municipalities across Hessen.

Their usage data comes from the demo data generator of the ingest pipeline: pass it as ``generate``
(called once per tenant created here, with the tenant id); without it the tenants exist and take part,
but have no data yet.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from demo.tenants import GODONU_MEMBERS
from tenants.benchmark import participation
from tenants.benchmark.metrics import FAMILIES
from tenants.context import platform_transaction, tenant_transaction
from tenants.db import db
from tenants.models import Tenant, TenantStatus
from tenants.registry import create_tenant, find_tenant_by_ags

COMPARISON_MEMBERS = (
    # Landkreis Marburg-Biedenkopf
    "06534001", "06534003", "06534004", "06534005", "06534006", "06534007", "06534008", "06534010",
    "06534011", "06534012", "06534016", "06534018", "06534020", "06534021",
    # Marburg's size class (with Gießen, Fulda and Wetzlar of the GoDonu members)
    "06433012", "06434001", "06435014",
    # 20,000 to 50,000
    "06431002", "06434008", "06438002", "06438011", "06436001",
    # small and middle municipalities in other districts
    "06531001", "06531003", "06531009", "06531012", "06532002", "06532005", "06532014", "06631001",
    "06631003", "06631012", "06631016", "06533001", "06533006", "06636001", "06635001", "06440001",
    "06437001", "06633001",
)


def seed_comparison_tenants() -> list[int]:
    """Create the missing comparison tenants as active; returns the ids of those created. Idempotent."""
    created = []
    with platform_transaction():
        for ags in COMPARISON_MEMBERS:
            if find_tenant_by_ags(ags) is None:
                created.append(create_tenant(ags, status=TenantStatus.ACTIVE).id)
    return created


def opt_in_demo_tenants() -> list[str]:
    """Opt every demo tenant into every family, unless its admin has decided already (a withdrawal stays)."""
    with platform_transaction():
        tenants = db.session.execute(select(Tenant.id, Tenant.name).where(
            Tenant.ags.in_([*GODONU_MEMBERS, *COMPARISON_MEMBERS]), Tenant.is_active)).all()
    done = []
    for tenant_id, name in tenants:
        with tenant_transaction(tenant_id) as session:
            if any(state["changed_at"] for state in participation.families(session, tenant_id).values()):
                continue
            participation.set_families(session, tenant_id, set(FAMILIES), "demo")
            done.append(name)
    return done


def seed_comparison_demo(generate: Callable[[int], object] | None = None) -> dict:
    """The whole demo step: tenants, their data (through ``generate``), opt-ins."""
    created = seed_comparison_tenants()
    if generate is not None:
        for tenant_id in created:
            generate(tenant_id)
    return {"created": len(created), "opted_in": opt_in_demo_tenants()}
