"""Tenants' identity providers, e-mail domains, and who may sign in with which role.

No Flask here: the portal's sign-in views (``portal/views/auth.py``) run the
OpenID Connect flow with Authlib and hand the validated claims to
:func:`admit_user` or :func:`admit_operator`, which decide. Every refusal is an
:class:`IdentityError` whose message is shown to the person on a clear page.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from portal.settings import Settings
from tenants import crypto
from tenants.context import working_for
from tenants.db import db
from tenants.models import USER_ROLES, IdentityProvider, Operator, Tenant, TenantDomain, User

ROLE_RANK = {"viewer": 1, "editor": 2, "admin": 3}
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
WELL_KNOWN = "/.well-known/openid-configuration"


class IdentityError(ValueError):
    """A sign-in or a setting that is refused; the message is for the person in front of the screen."""


# -- e-mail domains ------------------------------------------------------------

def parse_domains(text: str) -> list[str]:
    """Domains from free text (commas, spaces or lines), lower-cased, ``@`` stripped.

    :raise IdentityError: a token is not a domain name, or none is given.
    """
    domains = []
    for token in re.split(r"[\s,;]+", (text or "").strip().lower()):
        token = token.lstrip("@")
        if not token:
            continue
        if not DOMAIN.match(token):
            raise IdentityError(_l("%(domain)s is not an e-mail domain.", domain=token))
        if token not in domains:
            domains.append(token)
    if not domains:
        raise IdentityError(_l("Name at least one e-mail domain."))
    return domains


def tenant_for_domain(domain: str) -> int | None:
    return db.session.scalar(select(TenantDomain.tenant_id).where(TenantDomain.domain == domain.lower()))


def tenant_domains(tenant_id: int) -> list[str]:
    query = select(TenantDomain.domain).where(TenantDomain.tenant_id == tenant_id).order_by(TenantDomain.domain)
    return list(db.session.scalars(query))


def set_domains(tenant_id: int, domains: list[str]) -> None:
    """Make ``domains`` the tenant's e-mail domains.

    :raise IdentityError: a domain belongs to another tenant.
    """
    taken = db.session.execute(
        select(TenantDomain.domain, Tenant.name).join(Tenant, Tenant.id == TenantDomain.tenant_id)
        .where(TenantDomain.domain.in_(domains), TenantDomain.tenant_id != tenant_id)
    ).first()
    if taken is not None:
        raise IdentityError(_l("The domain %(domain)s is already registered for another municipality.",
                               domain=taken.domain))
    db.session.execute(delete(TenantDomain).where(TenantDomain.tenant_id == tenant_id,
                                                  TenantDomain.domain.not_in(domains)))
    known = set(tenant_domains(tenant_id))
    db.session.add_all(TenantDomain(domain=d, tenant_id=tenant_id) for d in domains if d not in known)
    db.session.flush()


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower() if "@" in (email or "") else ""


# -- the provider's settings ---------------------------------------------------

@dataclass(frozen=True)
class ProviderCheck:
    """What the connection test found."""

    issuer: str
    authorization_endpoint: str
    key_count: int
    end_session_endpoint: str | None


def _fetch_json(url: str, settings: Settings) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=settings.oidc_timeout, allow_redirects=False)
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise IdentityError(_l("%(url)s does not answer with JSON (%(error)s).", url=url,
                               error=type(exc).__name__)) from exc
    if not isinstance(body, dict):
        raise IdentityError(_l("%(url)s does not answer with a JSON object.", url=url))
    return body


def _check_url(url: str, settings: Settings) -> None:
    """Only https, and (unless allowed) only public addresses.

    Anyone may sign up, and the sign-up makes the portal fetch the given URL:
    without the address check that would let strangers probe the operator's
    internal network.
    """
    parts = urlsplit(url or "")
    allowed = {"https", "http"} if settings.oidc_allow_http else {"https"}
    if parts.scheme not in allowed or not parts.hostname:
        raise IdentityError(_l("The address must start with https://."))
    if settings.oidc_allow_private_addresses:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError as exc:
        raise IdentityError(_l("The identity provider cannot be reached.")) from exc
    if any(not ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        raise IdentityError(_l("The identity provider must be reachable at a public address."))


def check_provider(discovery_url: str, settings: Settings) -> ProviderCheck:
    """"Verbindung testen": the provider answers discovery and publishes signing keys.

    Also checks, as OpenID Connect Discovery requires, that the issuer named in
    the document is the address the document was fetched from.

    :raise IdentityError: with the first problem found.
    """
    _check_url(discovery_url, settings)
    metadata = _fetch_json(discovery_url, settings)
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri") if not metadata.get(k)]
    if missing:
        raise IdentityError(_l("The discovery document lacks %(fields)s.", fields=", ".join(missing)))
    issuer = str(metadata["issuer"]).rstrip("/")
    if discovery_url.rstrip("/") != issuer + WELL_KNOWN:
        raise IdentityError(_l("The provider calls itself %(issuer)s, which does not match the address.",
                               issuer=issuer))
    _check_url(metadata["jwks_uri"], settings)
    keys = _fetch_json(metadata["jwks_uri"], settings).get("keys") or []
    if not isinstance(keys, list) or not keys:
        raise IdentityError(_l("The provider publishes no signing keys."))
    return ProviderCheck(issuer=str(metadata["issuer"]), authorization_endpoint=metadata["authorization_endpoint"],
                         key_count=len(keys), end_session_endpoint=metadata.get("end_session_endpoint"))


def parse_role_mapping(text: str) -> dict[str, str]:
    """``value = role`` per line (``egov-admins = admin``) into a mapping.

    :raise IdentityError: a line is not of that form or names an unknown role.
    """
    mapping = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        value, sep, role = line.rpartition("=")
        value, role = value.strip(), role.strip().lower()
        if not sep or not value or role not in USER_ROLES:
            raise IdentityError(_l("Write each role mapping as 'claim value = viewer, editor or admin': %(line)s",
                                   line=line.strip()))
        mapping[value] = role
    return mapping


def format_role_mapping(mapping: dict[str, str]) -> str:
    return "\n".join(f"{value} = {role}" for value, role in sorted(mapping.items()))


@dataclass
class ProviderSettings:
    """What a tenant admin (or a sign-up) enters for its identity provider."""

    discovery_url: str
    client_id: str
    client_secret: str | None  # None or "": keep the stored one
    role_claim: str = "roles"
    role_mapping: dict[str, str] | None = None
    default_role: str | None = None
    scopes: str = "openid email profile"


def get_identity_provider(tenant_id: int) -> IdentityProvider | None:
    """The tenant's provider (the caller runs in the tenant's context)."""
    return db.session.get(IdentityProvider, tenant_id)


def save_identity_provider(tenant_id: int, wanted: ProviderSettings, settings: Settings, *,
                           trusted_issuer: str | None = None) -> IdentityProvider:
    """Test the provider, then store the settings with the secret encrypted.

    ``trusted_issuer`` skips the test and pins this issuer (operator command
    line and demo seed only, never a form).

    The configuration version goes up with every save, so the sign-in code
    builds a fresh Authlib client at once (Authlib caches clients per name).

    :raise IdentityError: the test fails, a field is missing, or the role is unknown.
    """
    client_id = (wanted.client_id or "").strip()
    if not client_id:
        raise IdentityError(_l("Enter the client id."))
    if wanted.default_role not in (None, *USER_ROLES):
        raise IdentityError(_l("Unknown role."))
    if "openid" not in wanted.scopes.split():
        raise IdentityError(_l("The scopes must include openid."))
    issuer = trusted_issuer or check_provider(wanted.discovery_url.strip(), settings).issuer
    with working_for(tenant_id):
        provider = get_identity_provider(tenant_id)
        if provider is None:
            if not wanted.client_secret:
                raise IdentityError(_l("Enter the client secret."))
            provider = IdentityProvider(tenant_id=tenant_id, config_version=0)
            db.session.add(provider)
        provider.discovery_url = wanted.discovery_url.strip()
        provider.client_id = client_id
        if wanted.client_secret:
            provider.client_secret_encrypted = crypto.encrypt(settings, wanted.client_secret)
        provider.role_claim = (wanted.role_claim or "roles").strip()
        provider.role_mapping = dict(wanted.role_mapping or {})
        provider.default_role = wanted.default_role
        provider.scopes = wanted.scopes
        provider.issuer = issuer
        provider.config_version = (provider.config_version or 0) + 1
        db.session.flush()
    return provider


# -- who may sign in -------------------------------------------------------------

def _claim_values(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def map_role(claims: dict[str, Any], role_claim: str, mapping: dict[str, str], default: str | None) -> str | None:
    """The highest role any of the claim's values maps to, else ``default``."""
    roles = [mapping[v] for v in _claim_values(claims, role_claim) if v in mapping]
    return max(roles, key=ROLE_RANK.__getitem__) if roles else default


def _checked_email(claims: dict[str, Any]) -> str:
    email = str(claims.get("email") or "").strip().lower()
    if not email_domain(email):
        raise IdentityError(_l("Your identity provider did not tell us your e-mail address."))
    if claims.get("email_verified") is False:
        raise IdentityError(_l("Your identity provider has not verified your e-mail address."))
    return email


def admit_user(tenant: Tenant, provider: IdentityProvider, claims: dict[str, Any]) -> User:
    """Create or update the member of staff these validated claims describe.

    The e-mail domain must be one of this tenant's: an identity provider of one
    municipality cannot vouch for people of another. The role comes from the
    configured claim; a role a tenant admin set in the portal is kept. The
    sign-up's contact person becomes admin on their first sign-in, so a new
    tenant has someone to manage it.

    :raise IdentityError: the tenant is not active, the domain or claims do not
        fit, or the account was deactivated.
    """
    if tenant.status != "active":
        raise IdentityError(_l("%(name)s cannot sign in at the moment.", name=tenant.name))
    email = _checked_email(claims)
    owner = tenant_for_domain(email_domain(email))
    if owner != tenant.id:
        raise IdentityError(_l("The address %(email)s does not belong to %(name)s.", email=email, name=tenant.name))
    subject = str(claims.get("sub") or "")
    if not subject:
        raise IdentityError(_l("Your identity provider did not identify you."))
    user = db.session.scalar(select(User).where(User.tenant_id == tenant.id, User.subject == subject))
    role = map_role(claims, provider.role_claim, provider.role_mapping or {}, provider.default_role)
    if role is None and user is None and email == (tenant.contact_email or "").lower() and not _has_admin(tenant.id):
        role = "admin"
    if user is None:
        if role is None:
            raise IdentityError(_l("Your account has no role for this platform. Ask your administrator."))
        user = User(tenant_id=tenant.id, subject=subject, role=role)
        db.session.add(user)
    elif not user.active:
        raise IdentityError(_l("Your account has been deactivated. Ask your administrator."))
    elif not user.role_pinned:
        if role is None:
            raise IdentityError(_l("Your account has no role for this platform. Ask your administrator."))
        user.role = role
    user.email = email
    user.display_name = str(claims.get("name") or claims.get("preferred_username") or email)[:200]
    user.last_login_at = func.now()
    db.session.flush()
    return user


def _has_admin(tenant_id: int) -> bool:
    query = select(User.id).where(User.tenant_id == tenant_id, User.role == "admin", User.active.is_(True))
    return db.session.scalar(query.limit(1)) is not None


def admit_operator(claims: dict[str, Any], settings: Settings) -> Operator:
    """The operator these claims from the platform identity provider describe.

    :raise IdentityError: the claim does not carry the operator value, or the
        operator was deactivated.
    """
    if settings.operator_role_value not in _claim_values(claims, settings.operator_role_claim):
        raise IdentityError(_l("Your account is not an operator of this platform."))
    subject = str(claims.get("sub") or "")
    email = str(claims.get("email") or "").strip().lower()
    if not subject or not email:
        raise IdentityError(_l("Your identity provider did not identify you."))
    operator = db.session.scalar(select(Operator).where(Operator.subject == subject))
    if operator is None:
        operator = Operator(subject=subject, email=email)
        db.session.add(operator)
    elif not operator.active:
        raise IdentityError(_l("Your account has been deactivated."))
    operator.email = email
    operator.display_name = str(claims.get("name") or email)[:200]
    operator.last_login_at = func.now()
    db.session.flush()
    return operator
