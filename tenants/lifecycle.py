"""A tenant's life: sign-up, review, activation, suspension, offboarding, purge.

::

    pending ──approve──▶ active ──suspend──▶ suspended ──reactivate──▶ active
       │                   │                     │
       └──reject──▶ rejected └──────offboard─────┴──▶ offboarded ──purge (2nd confirmation)

* ``suspended``: nobody signs in, ingest is paused (``registry.is_ingest_allowed``),
  all data is kept.
* ``offboarded``: nobody signs in; the operator downloads the archive
  (``tenants/archive.py``) and then purges the data, confirming with the AGS.

Each function changes the state in the caller's transaction and writes the
audit entry with it; the caller commits (and then starts provisioning after an
approval, so the job never sees an uncommitted tenant).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete

from tenants import audit, tenant_state
from tenants.context import platform_acting_for
from tenants.db import db
from tenants.errors import UserError
from tenants.identity import IdentityError, ProviderSettings, parse_domains, save_identity_provider, set_domains
from tenants.models import Tenant, TenantDomain, TenantStatus
from tenants.registry import create_tenant, find_tenant_by_ags, normalise_ags
from tenants.settings import Settings

_S = TenantStatus
TRANSITIONS = {
    "approve": ({_S.PENDING}, _S.ACTIVE),
    "reject": ({_S.PENDING}, _S.REJECTED),
    "suspend": ({_S.ACTIVE}, _S.SUSPENDED),
    "reactivate": ({_S.SUSPENDED}, _S.ACTIVE),
    "offboard": ({_S.ACTIVE, _S.SUSPENDED}, _S.OFFBOARDED),
}
#: Actions that need a reason the tenant is told.
NEEDS_REASON = {"reject", "suspend", "offboard"}


class LifecycleError(UserError, ValueError):
    """The action is not possible in the tenant's state; the message is for the operator."""


@dataclass
class SignUp:
    ags: str
    contact_name: str
    contact_email: str
    domains: str
    provider: ProviderSettings


def sign_up(form: SignUp, settings: Settings, *, remote_addr: str | None, redirect_uri: str | None = None) -> Tenant:
    """Register a municipality as a pending tenant with its domains and identity provider.

    :raise TenantError: unknown AGS, or the AGS has signed up already.
    :raise IdentityError: a domain, the contact or the identity provider is not right.
    """
    contact_email = form.contact_email.strip().lower()
    if not form.contact_name.strip() or "@" not in contact_email:
        raise IdentityError(_l("Name a contact person with an e-mail address."))
    domains = parse_domains(form.domains)
    if contact_email.rsplit("@", 1)[1] not in domains:
        raise IdentityError(_l("The contact's e-mail address must be in one of the domains."))
    tenant = _rejected_tenant(form.ags)
    if tenant is None:
        tenant = create_tenant(form.ags, status="pending", contact_name=form.contact_name.strip(),
                               contact_email=contact_email)
    else:
        # A rejected sign-up does not block the municipality for ever (someone else may have
        # signed it up): it starts again as pending, with the new contact and settings.
        tenant.status, tenant.status_reason = "pending", None
        tenant.contact_name, tenant.contact_email = form.contact_name.strip(), contact_email
    set_domains(tenant.id, domains)
    save_identity_provider(tenant.id, form.provider, settings, redirect_uri=redirect_uri,
                           saved_by=f"contact {contact_email}", note="sign-up")
    audit.record("tenant.signed_up", actor=f"contact {contact_email}", tenant_id=tenant.id, target=tenant.ags,
                 details={"domains": domains}, remote_addr=remote_addr)
    audit.record("tenant.signed_up", actor=f"contact {contact_email}", target=tenant.ags,
                 details={"name": tenant.name}, remote_addr=remote_addr)
    return tenant


def _rejected_tenant(ags: str) -> Tenant | None:
    tenant = find_tenant_by_ags(normalise_ags(ags))
    return tenant if tenant is not None and tenant.status == TenantStatus.REJECTED else None


def change_status(tenant: Tenant, action: str, *, actor: str, reason: str = "",
                  remote_addr: str | None = None) -> Tenant:
    """Apply a lifecycle action (see ``TRANSITIONS``).

    :raise LifecycleError: not allowed from the current state, or a reason is missing.
    """
    if action not in TRANSITIONS:
        raise LifecycleError(_l("Unknown action."))
    sources, target = TRANSITIONS[action]
    if tenant.status not in sources:
        raise LifecycleError(_l("Not possible while the tenant is %(status)s.", status=tenant.status))
    reason = (reason or "").strip()
    if action in NEEDS_REASON and not reason:
        raise LifecycleError(_l("Give a reason."))
    tenant.status = target
    tenant.status_reason = reason or None
    if target == "rejected":
        # Release the e-mail domains, so a wrong sign-up cannot hold on to the real municipality's domain.
        db.session.execute(delete(TenantDomain).where(TenantDomain.tenant_id == tenant.id))
    if target == TenantStatus.ACTIVE and tenant.activated_at is None:
        tenant.activated_at = db.func.now()
    db.session.flush()
    audit.record(f"tenant.{action}", actor=actor, tenant_id=tenant.id, target=tenant.ags,
                 details={"reason": reason} if reason else {}, remote_addr=remote_addr)
    return tenant


def start_provisioning(tenant_id: int):
    """Queue the provisioning job (after the approval has been committed)."""
    from tenants.jobs import enqueue
    from tenants.provisioning import provision_tenant

    return enqueue(provision_tenant, tenant_id, queue="high", timeout=1800, retries=2,
                   job_id=f"provision-tenant-{tenant_id}")


def provisioning_progress(tenant_id: int) -> dict | None:
    """The recorded progress of the last provisioning run, read in the current transaction."""
    from tenants.provisioning import STATE_KEY

    with platform_acting_for(tenant_id):
        return tenant_state.load(db.session, tenant_id, STATE_KEY)


def provisioning_job_error(tenant_id: int) -> str | None:
    """The last line of a failed provisioning job's traceback, if RQ still has it."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from tenants.jobs import redis_connection

    try:
        job = Job.fetch(f"provision-tenant-{tenant_id}", connection=redis_connection())
    except NoSuchJobError:
        return None
    if job.get_status() != "failed":
        return None
    trace = job.latest_result().exc_string if job.latest_result() else ""
    return (trace or "").strip().splitlines()[-1] if trace else None


def purge_data(tenant: Tenant, confirmation: str, *, actor: str, remote_addr: str | None = None) -> dict[str, int]:
    """Delete all of an offboarded tenant's rows; the operator confirms by typing its AGS.

    Provisioning is undone first, in its own transactions (its steps remove
    what they created outside these tables), so the caller's transaction is
    committed before. The tenant row stays, as the record that the tenant
    existed and was purged; the purge goes to the platform audit log, because
    the tenant's own audit log is purged with the rest. The caller commits.

    :raise LifecycleError: not offboarded, or the confirmation does not match.
    """
    from tenants import archive
    from tenants.provisioning import deprovision_tenant

    if tenant.status != "offboarded":
        raise LifecycleError(_l("Only an offboarded tenant's data can be purged."))
    if (confirmation or "").strip() != tenant.ags:
        raise LifecycleError(_l("Type the AGS %(ags)s to confirm.", ags=tenant.ags))
    tenant_id, ags = tenant.id, tenant.ags
    db.session.commit()
    deprovision_tenant(tenant_id)
    deleted = archive.purge(db.session.connection(), tenant_id)
    audit.record("tenant.purged", actor=actor, target=ags,
                 details={"rows": sum(deleted.values()), "tables": {k: v for k, v in deleted.items() if v}},
                 remote_addr=remote_addr)
    return deleted

