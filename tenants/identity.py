"""Tenants' identity providers, e-mail domains, and who may sign in with which role.

No Flask here: the portal's sign-in views (``portal/views/auth.py``) run the
OpenID Connect flow with Authlib and hand the validated claims to
:func:`admit_user` or :func:`admit_operator`, which decide. Every refusal is an
:class:`IdentityError` whose message is shown to the person on a clear page.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

from flask_babel import lazy_gettext as _l
from joserfc.jwk import KeySet
from sqlalchemy import delete, func, select, update

from tenants import claims, crypto, outbound
from tenants.context import platform_acting_for
from tenants.db import db
from tenants.errors import UserError
from tenants.models import (
    ROLE_RANK,
    USER_ROLES,
    IdentityProvider,
    IdentityProviderVersion,
    Operator,
    Tenant,
    TenantDomain,
    User,
)
from tenants.settings import Settings

DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
WELL_KNOWN = "/.well-known/openid-configuration"


class IdentityError(UserError, ValueError):
    """A sign-in or a setting that is refused; the message is for the person in front of the screen.

    ``attempted`` (set for refused sign-ins): who tried, ``{"attempted", "subject", "verified"}``.
    """

    attempted: dict[str, Any] | None = None


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

#: Scopes every sign-in asks for; a tenant may add more (``groups``, ``roles`` ...).
BASE_SCOPES = ("openid", "email", "profile")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,100}$")  # RFC 6749 3.3 scope-token
#: Discovery documents and key sets are small; a larger answer is not a provider's.
METADATA_MAX_BYTES = 512 * 1024


@dataclass(frozen=True)
class ProviderCheck:
    """What the connection test found."""

    issuer: str
    authorization_endpoint: str
    key_count: int
    end_session_endpoint: str | None
    token_auth_method: str = "client_secret_basic"
    #: The token endpoint accepted the client id and secret (it refused only the made-up code).
    credentials_accepted: bool = False


def _fetch_json(url: str, settings: Settings, what) -> dict[str, Any]:
    try:
        answer = outbound.fetch(url, settings, max_bytes=METADATA_MAX_BYTES)
    except outbound.OutboundError as exc:
        raise IdentityError(_l("%(what)s could not be read: %(error)s", what=what, error=str(exc))) from exc
    if answer.status != 200:
        raise IdentityError(_l("%(what)s could not be read: %(url)s answers HTTP %(status)s.", what=what, url=url,
                               status=answer.status))
    try:
        body = answer.json()
    except ValueError as exc:
        raise IdentityError(_l("%(what)s could not be read: %(url)s does not answer with JSON.", what=what,
                               url=url)) from exc
    if not isinstance(body, dict):
        raise IdentityError(_l("%(what)s could not be read: %(url)s does not answer with a JSON object.", what=what,
                               url=url))
    return body


def _check_url(url: str, settings: Settings) -> None:
    """Only https (plain http where allowed: the development IdP on loopback).

    Which addresses may be fetched is decided by ``tenants/outbound.py`` at the moment of the
    fetch (anyone may sign up, and the sign-up makes the portal fetch the given URL).
    """
    parts = urlsplit(url or "")
    allowed = {"https", "http"} if settings.oidc_allow_http else {"https"}
    if parts.scheme not in allowed or not parts.hostname:
        raise IdentityError(_l("The address must start with https://."))


def token_auth_method(metadata: dict[str, Any]) -> str:
    """How the client authenticates at the token endpoint: Basic unless the provider offers only POST.

    OpenID Connect Discovery: without ``token_endpoint_auth_methods_supported`` the default is
    ``client_secret_basic``.
    """
    offered = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" not in offered and "client_secret_post" in offered:
        return "client_secret_post"
    return "client_secret_basic"


def _credentials_refused(error: str, description: str):
    return IdentityError(_l(
        "The identity provider refuses the client id or the client secret (%(error)s%(description)s). Check both in "
        "the client registration at your provider: with Microsoft Entra ID the secret's value is meant, not its id, "
        "and expired secrets are refused as well.", error=error, description=f": {description}" if description else ""))


def _check_credentials(metadata: dict[str, Any], client_id: str, client_secret: str, redirect_uri: str | None,
                       settings: Settings) -> None:
    """Ask the token endpoint for a token with a made-up code and the client's credentials.

    A provider checks the client before the code (RFC 6749 5.2): ``invalid_grant`` says the
    credentials are right and only the code is not; ``invalid_client`` (or any 401; Keycloak
    answers ``unauthorized_client`` with 401) says they are wrong.

    :raise IdentityError: the credentials are refused, or the answer says nothing about them.
    """
    form = {"grant_type": "authorization_code", "code": "egovsad-connection-test-" + secrets.token_urlsafe(16),
            "code_verifier": secrets.token_urlsafe(48)}
    if redirect_uri:
        form["redirect_uri"] = redirect_uri
    headers = {"Accept": "application/json"}
    if token_auth_method(metadata) == "client_secret_basic":
        pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form.update(client_id=client_id, client_secret=client_secret)
    try:
        answer = outbound.fetch(metadata["token_endpoint"], settings, method="POST", data=form, headers=headers,
                                max_bytes=METADATA_MAX_BYTES)
    except outbound.OutboundError as exc:
        raise IdentityError(_l("The token endpoint could not be reached: %(error)s", error=str(exc))) from exc
    try:
        body = answer.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    error, description = str(body.get("error") or ""), str(body.get("error_description") or "")[:200]
    if error == "invalid_grant":
        return
    if error == "invalid_client" or answer.status == 401:
        raise _credentials_refused(error or f"HTTP {answer.status}", description)
    if error == "unauthorized_client":
        raise IdentityError(_l("The identity provider does not allow this client the authorization code flow "
                               "(unauthorized_client). Enable it (\"Standard flow\", \"Authorization Code\") in the "
                               "client registration."))
    raise IdentityError(_l("The token endpoint's answer says nothing about the client credentials (HTTP %(status)s"
                           "%(error)s); check the token endpoint in the discovery document.", status=answer.status,
                           error=f", {error}" if error else ""))


def check_provider(discovery_url: str, settings: Settings, *, client_id: str | None = None,
                   client_secret: str | None = None, redirect_uri: str | None = None) -> ProviderCheck:
    """"Verbindung testen": discovery, signing keys and (when given) the client credentials.

    Also checks, as OpenID Connect Discovery requires, that the issuer named in the document is
    the address the document was fetched from.

    :raise IdentityError: with the first problem found, in words a municipality's IT can act on.
    """
    _check_url(discovery_url, settings)
    metadata = _fetch_json(discovery_url, settings, _l("The discovery document"))
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri") if not metadata.get(k)]
    if missing:
        raise IdentityError(_l("The discovery document lacks %(fields)s.", fields=", ".join(missing)))
    issuer = str(metadata["issuer"]).rstrip("/")
    if discovery_url.rstrip("/") != issuer + WELL_KNOWN:
        raise IdentityError(_l("The provider calls itself %(issuer)s, which does not match the address.",
                               issuer=issuer))
    for endpoint in ("jwks_uri", "token_endpoint"):
        _check_url(metadata[endpoint], settings)
    keys = _fetch_json(metadata["jwks_uri"], settings, _l("The key set (jwks_uri)")).get("keys") or []
    if not isinstance(keys, list) or not keys:
        raise IdentityError(_l("The provider publishes no signing keys."))
    try:
        KeySet.import_key_set({"keys": keys})
    except Exception as exc:  # joserfc raises several kinds for malformed keys
        raise IdentityError(_l("The provider's key set cannot be read (%(error)s).", error=type(exc).__name__)) from exc
    if client_id and client_secret:
        _check_credentials(metadata, client_id, client_secret, redirect_uri, settings)
    return ProviderCheck(issuer=str(metadata["issuer"]), authorization_endpoint=metadata["authorization_endpoint"],
                         key_count=len(keys), end_session_endpoint=metadata.get("end_session_endpoint"),
                         token_auth_method=token_auth_method(metadata),
                         credentials_accepted=bool(client_id and client_secret))


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


def scopes_with(extra: str) -> str:
    """``openid email profile`` plus the extra scopes a tenant asks for (space or comma separated).

    :raise IdentityError: a scope is not a valid scope token, or there are too many.
    """
    scopes = list(BASE_SCOPES)
    for token in re.split(r"[\s,]+", (extra or "").strip()):
        if not token or token in scopes:
            continue
        if not _SCOPE_TOKEN.match(token):
            raise IdentityError(_l("%(scope)s is not a scope.", scope=token))
        scopes.append(token)
    if len(scopes) > 13:
        raise IdentityError(_l("Ask for at most ten extra scopes."))
    return " ".join(scopes)


def extra_scopes(scopes: str) -> str:
    return " ".join(s for s in (scopes or "").split() if s not in BASE_SCOPES)


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
    email_claim: str = "email"


def claims_read(role_claim: str, email_claim: str) -> list[str]:
    """The claims (paths) the portal reads from the ID token or the userinfo endpoint, for the setup pages."""
    return list(dict.fromkeys(["sub", email_claim or "email", "email_verified", "name", role_claim or "roles"]))


def find_identity_provider(session, tenant_id: int) -> IdentityProvider | None:
    """The tenant's provider, or None while it has none (the caller runs in the tenant's context)."""
    return session.get(IdentityProvider, tenant_id)


def stored_secret(tenant_id: int | None, settings: Settings) -> str | None:
    """The tenant's stored client secret (to test with when the form leaves the field empty)."""
    if tenant_id is None:
        return None
    with platform_acting_for(tenant_id):
        provider = find_identity_provider(db.session, tenant_id)
        return crypto.decrypt(settings, provider.client_secret_encrypted) if provider is not None else None


def _validated(wanted: ProviderSettings) -> ProviderSettings:
    client_id = (wanted.client_id or "").strip()
    if not client_id:
        raise IdentityError(_l("Enter the client id."))
    if wanted.default_role not in (None, *USER_ROLES):
        raise IdentityError(_l("Unknown role."))
    if "openid" not in (wanted.scopes or "").split():
        raise IdentityError(_l("The scopes must include openid."))
    for label, path in ((_l("role claim"), wanted.role_claim or "roles"), (_l("e-mail claim"),
                                                                          wanted.email_claim or "email")):
        if not claims.is_valid_path(path):
            raise IdentityError(_l("The %(label)s %(path)s is neither a claim name, a dotted path nor a JMESPath "
                                   "expression.", label=label, path=path))
    return replace(wanted, discovery_url=wanted.discovery_url.strip(), client_id=client_id,
                   role_claim=(wanted.role_claim or "roles").strip(),
                   email_claim=(wanted.email_claim or "email").strip(), role_mapping=dict(wanted.role_mapping or {}))


def save_identity_provider(tenant_id: int, wanted: ProviderSettings, settings: Settings, *,
                           trusted_issuer: str | None = None, redirect_uri: str | None = None,
                           saved_by: str = "system", note: str | None = None,
                           keep_an_admin: bool = False, acting_user_id: int | None = None) -> IdentityProvider:
    """Test the provider (discovery, keys, client credentials), then store the settings with the secret encrypted.

    ``trusted_issuer`` skips the test and pins this issuer (operator command line and demo seed
    only, never a form). ``keep_an_admin`` (the tenant admin's form) refuses settings under which
    no administrator could sign in any more (:func:`ensure_an_admin_remains`); when the change moves
    the tenant to another provider or client, the acting admin's role is fixed first
    (``acting_user_id``), so she is found again by her address and stays admin.

    Every save is kept as a version (``portal.identity_provider_versions``) for the operators'
    restore, and the configuration version goes up, so the sign-in code builds a fresh Authlib
    client at once (Authlib caches clients per name).

    :raise IdentityError: the test fails, a field is missing or wrong, or no admin would remain.
    """
    wanted = _validated(wanted)
    with platform_acting_for(tenant_id):
        provider = find_identity_provider(db.session, tenant_id)
        secret = wanted.client_secret or (crypto.decrypt(settings, provider.client_secret_encrypted)
                                          if provider is not None else None)
        if not secret:
            raise IdentityError(_l("Enter the client secret."))
        issuer = trusted_issuer or check_provider(wanted.discovery_url, settings, client_id=wanted.client_id,
                                                  client_secret=secret, redirect_uri=redirect_uri).issuer
        binding = f"{issuer} {wanted.client_id}"
        if provider is not None and binding != provider.binding:
            bind_unbound_users(tenant_id, provider.binding)
            if keep_an_admin and acting_user_id is not None:
                _fix_role(tenant_id, acting_user_id)
        if keep_an_admin and provider is not None:
            ensure_an_admin_remains(tenant_id, provider, wanted, binding, tenant_domains(tenant_id))
        if provider is None:
            provider = IdentityProvider(tenant_id=tenant_id, config_version=0)
            db.session.add(provider)
        provider.discovery_url, provider.client_id = wanted.discovery_url, wanted.client_id
        if wanted.client_secret or not provider.client_secret_encrypted:
            provider.client_secret_encrypted = crypto.encrypt(settings, secret)
        provider.role_claim, provider.email_claim = wanted.role_claim, wanted.email_claim
        provider.role_mapping, provider.default_role = wanted.role_mapping, wanted.default_role
        provider.scopes, provider.issuer = wanted.scopes, issuer
        provider.config_version = next_version(tenant_id, provider.config_version)
        db.session.flush()
        record_version(provider, saved_by, note)
    return provider


def next_version(tenant_id: int, current: int | None) -> int:
    latest = db.session.scalar(select(func.max(IdentityProviderVersion.version))
                               .where(IdentityProviderVersion.tenant_id == tenant_id))
    return max(current or 0, latest or 0) + 1


def record_version(provider: IdentityProvider, saved_by: str, note: str | None = None) -> IdentityProviderVersion:
    """Keep the provider's current settings (and the tenant's domains) as a version."""
    version = IdentityProviderVersion(
        tenant_id=provider.tenant_id, version=provider.config_version, saved_by=saved_by[:200], note=note,
        discovery_url=provider.discovery_url, client_id=provider.client_id,
        client_secret_encrypted=provider.client_secret_encrypted, scopes=provider.scopes,
        role_claim=provider.role_claim, email_claim=provider.email_claim, role_mapping=dict(provider.role_mapping),
        default_role=provider.default_role, issuer=provider.issuer, domains=tenant_domains(provider.tenant_id))
    db.session.add(version)
    db.session.flush()
    return version


def bind_unbound_users(tenant_id: int, binding: str) -> None:
    """Record the outgoing provider for members who have not signed in since ``bound_to`` exists.

    Called when the tenant moves to another provider or client: from then on these members are
    found again by their address at the first sign-in through the new one.
    """
    db.session.execute(update(User).where(User.tenant_id == tenant_id, User.bound_to.is_(None),
                                          User.subject.is_not(None)).values(bound_to=binding))


def _fix_role(tenant_id: int, user_id: int) -> None:
    user = db.session.get(User, (tenant_id, user_id))
    if user is not None and user.role == "admin":
        user.role_pinned = True


# -- no lock-out -------------------------------------------------------------------


@dataclass(frozen=True)
class NextSignIn:
    """What a member's next sign-in would give under some settings."""

    email: str
    role: str | None
    why: str


def _role_from(claims_of: dict[str, Any], role_claim: str, mapping: dict[str, str], default: str | None) -> str | None:
    roles = claims.matching(claims.values(claims.read(claims_of, role_claim)), mapping)
    return max(roles, key=ROLE_RANK.__getitem__) if roles else default


def _next_sign_in(user: User, wanted: ProviderSettings, binding: str, current_binding: str,
                  domains: list[str]) -> NextSignIn:
    """Simulate ``user``'s next sign-in under ``wanted`` on the claims of their last one."""
    bound_elsewhere = (user.bound_to or current_binding) != binding or user.subject is None
    if not user.active:
        return NextSignIn(user.email, None, str(_l("deactivated")))
    if user.role_pinned and (bound_elsewhere or user.last_claims is None):
        # Found again by the address at the first sign-in through the new provider; the fixed role stays.
        ok = email_domain(user.email) in domains
        return NextSignIn(user.email, user.role if ok else None,
                          str(_l("role fixed in the portal")) if ok else str(_l("address outside the domains")))
    if bound_elsewhere or user.last_claims is None:
        return NextSignIn(user.email, None, str(_l("not signed in through these settings yet")))
    try:
        email = _checked_email(user.last_claims, wanted.email_claim)
    except IdentityError as exc:
        return NextSignIn(user.email, None, str(exc))
    if email_domain(email) not in domains:
        return NextSignIn(user.email, None, str(_l("address outside the domains")))
    if user.role_pinned:
        return NextSignIn(user.email, user.role, str(_l("role fixed in the portal")))
    role = _role_from(user.last_claims, wanted.role_claim, wanted.role_mapping or {}, wanted.default_role)
    seen = ", ".join(claims.values(claims.read(user.last_claims, wanted.role_claim))) or "–"
    return NextSignIn(user.email, role, str(_l("%(claim)s: %(values)s", claim=wanted.role_claim, values=seen)))


def ensure_an_admin_remains(tenant_id: int, current: IdentityProvider, wanted: ProviderSettings, binding: str,
                            domains: list[str]) -> None:
    """Refuse settings under which no active administrator could sign in any more.

    Every active member's next sign-in is simulated on the claims of their last one. A tenant
    without any administrator yet (before its contact person's first sign-in) is not checked:
    the contact person becomes admin whatever the provider sends.

    :raise IdentityError: naming each current administrator and what they would become, and why.
    """
    users = list(db.session.scalars(select(User).where(User.tenant_id == tenant_id, User.active.is_(True))))
    admins = [u for u in users if u.role == "admin"]
    if not admins:
        return
    outcomes = [_next_sign_in(u, wanted, binding, current.binding, domains) for u in users]
    if any(o.role == "admin" for o in outcomes):
        return
    labels = {None: str(_l("refused")), "viewer": str(_l("Viewer")), "editor": str(_l("Editor"))}
    lost = "; ".join(f"{o.email} → {labels.get(o.role, o.role)} ({o.why})"
                     for o in outcomes if o.email in {a.email for a in admins})
    raise IdentityError(_l(
        "Not saved: with these settings no administrator could sign in any more (%(who)s). Keep a mapping to admin for "
        "an administrators' group, or fix an administrator's role under Users first.", who=lost))


def another_admin_remains(tenant_id: int, user_id: int) -> bool:
    """Could someone other than ``user_id`` still sign in as administrator under the current settings?

    The users page asks this before an admin is demoted or deactivated: an admin in the database
    whose claims would make them a viewer at their next sign-in does not count.
    """
    provider = find_identity_provider(db.session, tenant_id)
    others = [u for u in db.session.scalars(select(User).where(User.tenant_id == tenant_id, User.active.is_(True)))
              if u.id != user_id]
    if provider is None:
        return any(u.role == "admin" for u in others)
    current = ProviderSettings(provider.discovery_url, provider.client_id, None, provider.role_claim,
                               provider.role_mapping, provider.default_role, provider.scopes, provider.email_claim)
    domains = tenant_domains(tenant_id)
    return any(_next_sign_in(u, current, provider.binding, provider.binding, domains).role == "admin" for u in others)


# -- who may sign in -------------------------------------------------------------


def map_role(claims_of: dict[str, Any], role_claim: str, mapping: dict[str, str], default: str | None) -> str | None:
    """The highest role any of the claim's values maps to, else ``default``."""
    return _role_from(claims_of, role_claim, mapping, default)


def _checked_email(claims_of: dict[str, Any], email_claim: str = "email") -> str:
    """The address in the configured claim. ``email_verified`` counts only for the ``email`` claim itself."""
    found = claims.values(claims.read(claims_of, email_claim))
    email = next((v.strip().lower() for v in found if email_domain(v)), "")
    if not email:
        raise IdentityError(_l("Your identity provider did not send an e-mail address in the claim %(claim)s.",
                               claim=email_claim))
    if email_claim == "email" and claims.is_false(claims_of.get("email_verified")):
        raise IdentityError(_l("Your identity provider has not verified your e-mail address."))
    return email


def attempted_identity(claims_of: dict[str, Any], email_claim: str = "email", *, verified: bool) -> dict[str, Any]:
    """Who tried to sign in, for the audit of a refusal: an address if any, else the subject."""
    candidates = [*claims.values(claims.read(claims_of, email_claim)), str(claims_of.get("email") or ""),
                  str(claims_of.get("upn") or ""), str(claims_of.get("preferred_username") or "")]
    subject = str(claims_of.get("sub") or "")
    attempted = next((c for c in candidates if "@" in c), "") or subject
    return {"attempted": attempted[:254], "subject": subject[:254], "verified": verified}


def admit_user(tenant: Tenant, provider: IdentityProvider, claims_of: dict[str, Any]) -> User:
    """Create or update the member of staff these validated claims describe.

    The address (``provider.email_claim``) must be in one of this tenant's domains: an identity
    provider of one municipality cannot vouch for people of another. The role comes from the
    configured claim path; a role fixed in the portal (by a tenant admin or an operator) is
    kept. The sign-up's contact person becomes admin on their first sign-in while the tenant has
    none, whatever the provider sends, and keeps it (the role is fixed), so a new tenant always
    has someone to manage it.

    :raise IdentityError: the tenant is not active, the domain or claims do not fit, or the
        account was deactivated; ``attempted`` says who tried.
    """
    try:
        return _admit(tenant, provider, claims_of)
    except IdentityError as exc:
        exc.attempted = getattr(exc, "attempted", None) or attempted_identity(claims_of, provider.email_claim,
                                                                              verified=True)
        raise


def _find_user(tenant: Tenant, provider: IdentityProvider, subject: str, email: str) -> User | None:
    """By subject; else a row bound to another provider or client, or an operator's grant, by address."""
    user = db.session.scalar(select(User).where(User.tenant_id == tenant.id, User.subject == subject))
    if user is not None:
        return user
    elsewhere = User.bound_to.is_not(None) & (User.bound_to != provider.binding)
    query = select(User).where(User.tenant_id == tenant.id, func.lower(User.email) == email,
                               User.subject.is_(None) | elsewhere)
    return db.session.scalars(query.order_by(User.subject.is_(None).desc(), User.id)).first()


def _admit(tenant: Tenant, provider: IdentityProvider, claims_of: dict[str, Any]) -> User:
    if not tenant.is_active:
        raise IdentityError(_l("%(name)s cannot sign in at the moment.", name=tenant.name))
    email = _checked_email(claims_of, provider.email_claim)
    if tenant_for_domain(email_domain(email)) != tenant.id:
        raise IdentityError(_l("The address %(email)s does not belong to %(name)s.", email=email, name=tenant.name))
    subject = str(claims_of.get("sub") or "")
    if not subject:
        raise IdentityError(_l("Your identity provider did not identify you."))
    user = _find_user(tenant, provider, subject, email)
    if user is not None and not user.active:
        raise IdentityError(_l("Your account has been deactivated. Ask your administrator."))
    role = map_role(claims_of, provider.role_claim, provider.role_mapping or {}, provider.default_role)
    contact = (user is None or user.role != "admin") and email == (tenant.contact_email or "").lower() \
        and not _has_admin(tenant.id)
    if contact or (user is not None and user.role_pinned):
        role, pinned = ("admin" if contact else user.role), True
    else:
        pinned = False
        if not claims.values(claims.read(claims_of, provider.role_claim)) and \
                claims.group_overage(claims_of, provider.role_claim):
            raise IdentityError(_l(
                "Your account is in more than 200 groups, so your identity provider left the groups out of the token "
                "(group overage). Ask your IT to send only the groups assigned to the application, or to use app "
                "roles (claim roles) instead of groups."))
        if role is None:
            raise IdentityError(_l("Your account has no role for this platform. Ask your administrator."))
    if user is None:
        user = User(tenant_id=tenant.id, role=role)
        db.session.add(user)
    user.subject, user.bound_to = subject, provider.binding
    user.role, user.role_pinned = role, pinned or user.role_pinned
    user.email = email
    user.display_name = str(claims_of.get("name") or claims_of.get("preferred_username") or email)[:200]
    user.last_claims = claims.storable(claims_of)
    user.last_login_at = func.now()
    db.session.flush()
    return user


def _has_admin(tenant_id: int) -> bool:
    query = select(User.id).where(User.tenant_id == tenant_id, User.role == "admin", User.active.is_(True))
    return db.session.scalar(query.limit(1)) is not None


def admit_operator(claims_of: dict[str, Any], settings: Settings) -> Operator:
    """The operator these claims from the platform identity provider describe.

    :raise IdentityError: the claim does not carry the operator value, or the
        operator was deactivated.
    """
    if settings.operator_role_value not in claims.values(claims.read(claims_of, settings.operator_role_claim)):
        raise IdentityError(_l("Your account is not an operator of this platform."))
    subject = str(claims_of.get("sub") or "")
    email = str(claims_of.get("email") or "").strip().lower()
    if not subject or not email:
        raise IdentityError(_l("Your identity provider did not identify you."))
    operator = db.session.scalar(select(Operator).where(Operator.subject == subject))
    if operator is None:
        operator = Operator(subject=subject, email=email)
        db.session.add(operator)
    elif not operator.active:
        raise IdentityError(_l("Your account has been deactivated."))
    operator.email = email
    operator.display_name = str(claims_of.get("name") or email)[:200]
    operator.last_login_at = func.now()
    db.session.flush()
    return operator
