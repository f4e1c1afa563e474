"""Superset's security manager for eGovSAD: users come from the portal (OIDC), tenants stay apart.

The portal's ID token carries ``tenant`` (the tenant's AGS) and ``roles``
(``viewer`` or ``editor``). They map to Superset roles that provisioning
creates per tenant: ``tenant_<AGS>_viewer`` and ``tenant_<AGS>_editor``. Any
other value maps to nothing, and a user without a role cannot do anything.

Every access check Superset makes is followed by the tenant boundary's
(superset_config/tenant_boundary.py), so no path of Superset's own (dashboard
roles, drill-to-detail through a dashboard, ownership) reaches another
tenant's objects.
"""

import re

import tenant_boundary
from sqlalchemy import event
from superset.security import SupersetSecurityManager

AGS = re.compile(r"^06[0-9]{3}([0-9]{3})?$")
ACCESS_LEVELS = ("viewer", "editor")


def role_keys(claims: dict) -> list[str]:
    tenant = str(claims.get("tenant", ""))
    if not AGS.fullmatch(tenant):
        return []
    return [f"tenant:{tenant}:{level}" for level in claims.get("roles", []) if level in ACCESS_LEVELS]


#: Roles each access level gets beside the tenant's own role (tenants/superset/roles.py builds them):
#: viewers and editors the permissions listed in tenants/superset/roles.py (Superset's Gamma without
#: what reaches beyond a tenant), editors SQL Lab as well.
BASE_ROLES = {"viewer": ["egov_viewer"], "editor": ["egov_editor", "sql_lab"]}


def roles_mapping() -> dict[str, list[str]]:
    """Evaluated at every sign-in (FAB accepts a callable), so new tenants need no restart."""
    from superset import security_manager

    mapping = {}
    for role in security_manager.get_all_roles():
        parts = role.name.split("_")
        if len(parts) == 3 and parts[0] == "tenant" and AGS.fullmatch(parts[1]) and parts[2] in ACCESS_LEVELS:
            mapping[f"tenant:{parts[1]}:{parts[2]}"] = BASE_ROLES[parts[2]] + [role.name]
    return mapping


def guest_token_is_bound(payload: dict) -> bool:
    """``GUEST_TOKEN_VALIDATOR_HOOK``: a guest token names its tenant and carries a row rule.

    Without the tenant the boundary has nobody to hold the guest to; without a clause the guest
    would see every row the database role can read. The portal always sends both.
    """
    rules = payload.get("rls_rules", payload.get("rls")) or []
    return (bool(AGS.fullmatch(str(payload.get("tenant", "")))) and bool(rules)
            and all(rule.get("clause") for rule in rules))


#: The schemas of the platform's database that a tenant's database role reads (its analytics rows under RLS,
#: the published comparison figures); SQL Lab lists no other (tests/superset/test_self_service.py).
TENANT_SCHEMAS = frozenset({"analytics", "benchmark"})


class PortalSecurityManager(SupersetSecurityManager):
    def __init__(self, appbuilder):
        super().__init__(appbuilder)
        from superset.extensions import db

        # Reads: another tenant's metadata does not exist for a tenant's principal.
        event.listen(db.session, "do_orm_execute", tenant_boundary.scope_reads)
        # Writes: nothing a tenant's principal stores may reach another tenant's objects.
        event.listen(db.session, "before_flush", tenant_boundary.check_flush)

    def parse_jwt_guest_token(self, raw_token: str) -> dict:
        """Superset checks signature, audience and expiry; the token must also be bound to a tenant."""
        token = super().parse_jwt_guest_token(raw_token)
        if not guest_token_is_bound(token):
            raise ValueError("guest token without tenant or row rule")
        return token

    def raise_for_access(self, **kwargs) -> None:
        super().raise_for_access(**kwargs)
        tenant_boundary.check_access(**kwargs)

    def get_schemas_accessible_by_user(self, database, catalog, schemas, hierarchical=True) -> set[str]:
        """In a tenant's database only the schemas its role may read: PostgreSQL lists every schema's name to
        anyone, and SQL Lab offered ``portal`` and ``public`` that then answered "permission denied"."""
        found = super().get_schemas_accessible_by_user(database, catalog, schemas, hierarchical)
        if self.is_admin() or not tenant_boundary.is_tenant_database(database):
            return found
        return {schema for schema in found if schema in TENANT_SCHEMAS}

    def oauth_user_info(self, provider, response=None):
        claims = dict((response or {}).get("userinfo") or {})
        if not claims:
            claims = dict(self.oauth_remotes[provider].userinfo(token=response))
        return {
            # The portal's subject is "<AGS>:<user id>", unique across tenants.
            "username": claims["sub"],
            "email": claims.get("email", ""),
            "first_name": claims.get("given_name") or claims.get("name", ""),
            "last_name": claims.get("family_name", ""),
            "role_keys": role_keys(claims),
        }
