"""Break-glass: an operator restores a tenant's administrator or its identity-provider settings.

For the case the tenant cannot help itself any more: the provider stopped sending the admins'
group, the client secret expired, a setting was changed at the provider's side. Both actions
are open to operators only (console, ``portal/views/operator.py``, and ``egov tenants
grant-admin`` / ``egov tenants identity --restore``), need a reason, and are recorded twice:
in the tenant's own audit log (its admins see who touched their tenant and why) and in the
platform's.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from tenants import audit
from tenants.context import platform_acting_for
from tenants.db import db
from tenants.identity import (
    IdentityError,
    bind_unbound_users,
    email_domain,
    find_identity_provider,
    next_version,
    record_version,
    set_domains,
    tenant_domains,
)
from tenants.models import IdentityProvider, IdentityProviderVersion, Tenant, User


def _record(action: str, tenant: Tenant, *, actor: str, target: str, reason: str, remote_addr: str | None,
            **details) -> None:
    """The same entry in the tenant's audit log and in the platform's."""
    audit.record(action, actor=actor, tenant_id=tenant.id, target=target, details={"reason": reason, **details},
                 remote_addr=remote_addr)
    audit.record(action, actor=actor, target=tenant.ags, details={"reason": reason, "address": target,
                                                                  "tenant": tenant.name, **details},
                 remote_addr=remote_addr)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise IdentityError(_l("Give a reason (for example the ticket number); it goes into both audit logs."))
    return reason[:500]


def grant_admin(tenant: Tenant, email: str, *, actor: str, reason: str, remote_addr: str | None = None) -> User:
    """Make the person with this address an administrator of the tenant, fixed in the portal.

    An existing account becomes admin (and active again); for an address that has not signed in
    yet, an account without subject is created that their first sign-in takes over.

    :raise IdentityError: no reason, or the address is not in the tenant's domains.
    """
    reason = _reason(reason)
    email = (email or "").strip().lower()
    with platform_acting_for(tenant.id):
        domains = tenant_domains(tenant.id)
        if email_domain(email) not in domains:
            raise IdentityError(_l("%(email)s is not an address of %(name)s (domains: %(domains)s).", email=email,
                                   name=tenant.name, domains=", ".join(domains) or "–"))
        query = select(User).where(User.tenant_id == tenant.id, func.lower(User.email) == email)
        user = db.session.scalars(query.order_by(User.last_login_at.desc().nulls_last(), User.id)).first()
        existing = user is not None
        if user is None:
            user = User(tenant_id=tenant.id, subject=None, email=email, display_name=email)
            db.session.add(user)
        user.role, user.role_pinned, user.active = "admin", True, True
        db.session.flush()
        _record("break_glass.admin_granted", tenant, actor=actor, target=email, reason=reason,
                remote_addr=remote_addr, existing_account=existing)
    return user


def versions(tenant_id: int) -> list[IdentityProviderVersion]:
    """The tenant's saved identity-provider settings, newest first."""
    with platform_acting_for(tenant_id):
        query = (select(IdentityProviderVersion).where(IdentityProviderVersion.tenant_id == tenant_id)
                 .order_by(IdentityProviderVersion.version.desc()))
        return list(db.session.scalars(query))


def restore_identity(tenant: Tenant, version: int, *, actor: str, reason: str,
                     remote_addr: str | None = None) -> IdentityProvider:
    """Bring back a saved version of the settings (and its domains) as the newest version.

    Not tested against the provider first: it is the operator's way back to a state that worked,
    also while the provider is unreachable.

    :raise IdentityError: no reason, the version does not exist, or a domain now belongs to another tenant.
    """
    reason = _reason(reason)
    with platform_acting_for(tenant.id):
        saved = db.session.get(IdentityProviderVersion, (tenant.id, version))
        if saved is None:
            raise IdentityError(_l("There is no version %(version)s.", version=version))
        provider = find_identity_provider(db.session, tenant.id)
        if provider is None:
            provider = IdentityProvider(tenant_id=tenant.id, config_version=0)
            db.session.add(provider)
        elif f"{saved.issuer} {saved.client_id}" != provider.binding:
            bind_unbound_users(tenant.id, provider.binding)
        for name in ("discovery_url", "client_id", "client_secret_encrypted", "scopes", "role_claim", "email_claim",
                     "default_role", "issuer"):
            setattr(provider, name, getattr(saved, name))
        provider.role_mapping = dict(saved.role_mapping)
        if saved.domains:
            set_domains(tenant.id, list(saved.domains))
        provider.config_version = next_version(tenant.id, provider.config_version)
        db.session.flush()
        record_version(provider, actor, note=f"restored from version {version}: {reason}")
        _record("break_glass.identity_restored", tenant, actor=actor, target=saved.issuer or saved.discovery_url,
                reason=reason, remote_addr=remote_addr, version=version, new_version=provider.config_version)
    return provider
