"""Superset's security manager for eGovSAD: users come from the portal (OIDC).

The portal's ID token carries ``tenant`` (the tenant's AGS) and ``roles``
(``viewer`` or ``editor``). They map to Superset roles that provisioning
creates per tenant: ``tenant_<AGS>_viewer`` and ``tenant_<AGS>_editor``. Any
other value maps to nothing, and a user without a role cannot do anything.
"""

import re

from superset.security import SupersetSecurityManager

AGS = re.compile(r"^06[0-9]{3}([0-9]{3})?$")
ACCESS_LEVELS = ("viewer", "editor")


def role_keys(claims: dict) -> list[str]:
    tenant = str(claims.get("tenant", ""))
    if not AGS.fullmatch(tenant):
        return []
    return [f"tenant:{tenant}:{level}" for level in claims.get("roles", []) if level in ACCESS_LEVELS]


#: Superset's built-in roles each access level gets beside the tenant's own role:
#: viewers a read-only copy of Gamma, editors Gamma (charts, dashboards) and SQL Lab.
BASE_ROLES = {"viewer": ["egov_viewer"], "editor": ["Gamma", "sql_lab"]}


def roles_mapping() -> dict[str, list[str]]:
    """Evaluated at every sign-in (FAB accepts a callable), so new tenants need no restart."""
    from superset import security_manager

    mapping = {}
    for role in security_manager.get_all_roles():
        parts = role.name.split("_")
        if len(parts) == 3 and parts[0] == "tenant" and AGS.fullmatch(parts[1]) and parts[2] in ACCESS_LEVELS:
            mapping[f"tenant:{parts[1]}:{parts[2]}"] = BASE_ROLES[parts[2]] + [role.name]
    return mapping


class PortalSecurityManager(SupersetSecurityManager):
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
