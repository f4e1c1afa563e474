"""A tenant admin manages the tenant's staff: list, change role, deactivate.

Every function takes the tenant and runs in that tenant's context (a web
request under ``/t/<ags>/``), so row-level security applies beneath the
explicit ``tenant_id`` filters.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from tenants.db import db
from tenants.errors import NotFound
from tenants.identity import IdentityError, another_admin_remains
from tenants.models import USER_ROLES, User


def list_users(session, tenant_id: int) -> list[User]:
    query = select(User).where(User.tenant_id == tenant_id).order_by(User.active.desc(), User.email)
    return list(session.scalars(query))


def get_user(session, tenant_id: int, user_id: int) -> User:
    """:raise NotFound: for a missing user and for another tenant's user alike."""
    user = session.get(User, (tenant_id, user_id))
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(user_id)
    return user


def _would_leave_no_admin(user: User) -> bool:
    """Is ``user`` an active admin without whom nobody could sign in as admin (``another_admin_remains``)?"""
    return user.role == "admin" and user.active and not another_admin_remains(user.tenant_id, user.id)


def change_role(user: User, role: str) -> None:
    """Set the role and pin it, so sign-ins no longer take it from the IdP's claims.

    :raise IdentityError: unknown role, or the last active admin would be demoted.
    """
    if role not in USER_ROLES:
        raise IdentityError(_l("Unknown role."))
    if role != "admin" and _would_leave_no_admin(user):
        raise IdentityError(_l("The tenant needs at least one active administrator."))
    user.role = role
    user.role_pinned = True
    db.session.flush()


def set_active(user: User, active: bool) -> None:
    """Deactivate (their sessions end with their next request) or reactivate.

    :raise IdentityError: the last active admin would be deactivated.
    """
    if not active and _would_leave_no_admin(user):
        raise IdentityError(_l("The tenant needs at least one active administrator."))
    user.active = active
    db.session.flush()
