"""Who may open which page: decorators for views.

Tenant pages live under ``/t/<ags>/``; ``portal.tenancy`` has already
answered 404 when a signed-in member of staff asks for another tenant. These
decorators add the role check inside the tenant:

* not signed in: redirect to the sign-in page (Flask-Login's ``login_view``),
* signed in but the role is too low, or an operator on a tenant page: 403,
  because the tenant itself is theirs and its existence is no secret to them.
"""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from portal.extensions import login_manager


def role_required(role: str):
    """Allow tenant staff of at least ``role`` (viewer < editor < admin) of the request's tenant."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.is_operator or not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        # Read by the route matrix (tests/auth/test_route_matrix.py): every tenant route declares who may use it.
        wrapped.required_role = role
        return wrapped

    return decorator


def operator_required(view):
    """Allow platform operators only."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_operator:
            abort(403)
        return view(*args, **kwargs)

    wrapped.required_role = "operator"
    return wrapped


def public(view):
    """Mark a view as open to everyone (sign-in, sign-up); the route matrix expects a mark on every view."""
    view.required_role = None
    return view
