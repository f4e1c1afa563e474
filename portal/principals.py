"""Who is signed in: tenant staff or a platform operator.

Flask-Login keeps one string per session. It names the kind and, for tenant
staff, the tenant, so the request can bind the tenant *before* the user row
is read: the users table is under row-level security and can only be read
inside its tenant.

* ``u:<tenant_id>:<user_id>``: a member of a tenant's staff
* ``o:<operator_id>``: a platform operator (belongs to no tenant)
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g
from flask_login import UserMixin

from tenants.context import current_tenant_id
from tenants.db import db
from tenants.models import Operator, Role, User


@dataclass
class StaffPrincipal(UserMixin):
    user: User

    @property
    def tenant_id(self) -> int:
        return self.user.tenant_id

    is_operator = False

    def get_id(self) -> str:
        return f"u:{self.user.tenant_id}:{self.user.id}"

    def has_role(self, role: str) -> bool:
        return Role(self.user.role).at_least(role)


@dataclass
class OperatorPrincipal(UserMixin):
    operator: Operator

    tenant_id = None
    is_operator = True

    def get_id(self) -> str:
        return f"o:{self.operator.id}"

    def has_role(self, role: str) -> bool:
        return False


def tenant_of_identity(identity: str | None) -> int | None:
    """The tenant a session identity belongs to, read without the database."""
    if identity and identity.startswith("u:"):
        try:
            return int(identity.split(":")[1])
        except (IndexError, ValueError):
            return None
    return None


def load_principal(identity: str):
    """Flask-Login's user loader. Inactive or vanished accounts sign out."""
    kind, _, rest = identity.partition(":")
    try:
        if kind == "o":
            operator = db.session.get(Operator, int(rest))
            return OperatorPrincipal(operator) if operator and operator.active else None
        if kind == "u":
            tenant_id, user_id = (int(part) for part in rest.split(":"))
            # A tenant that is not active (suspended, offboarded) has no sessions.
            tenant = g.get("tenant")
            if tenant_id != current_tenant_id() or tenant is None or not tenant.is_active:
                return None
            user = db.session.get(User, (tenant_id, user_id))
            return StaffPrincipal(user) if user and user.active else None
    except ValueError:
        return None
    return None
