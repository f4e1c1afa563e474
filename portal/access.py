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

from flask import abort, g, jsonify, render_template, request, session
from flask_login import current_user

from portal.extensions import login_manager
from portal.principals import tenant_of_identity


def _unauthorized():
    """Send people to sign in; answer scripts (which asked for JSON) with a plain 401 instead."""
    if request.accept_mimetypes.best == "application/json":
        response = jsonify(error="not signed in")
        response.status_code = 401
        return response
    tenant = g.get("tenant")
    if tenant is not None and not tenant.is_active and tenant_of_identity(session.get("_user_id")) == tenant.id:
        # Their session ended because the operator suspended the tenant: signing in again cannot help.
        return not_active_page(tenant)
    return login_manager.unauthorized()


def not_active_page(tenant):
    """The page for staff of a suspended (or offboarded) tenant: only the platform's operator can help."""
    return render_template("tenant/not_active.html", tenant=tenant), 403


def role_required(role: str):
    """Allow tenant staff of at least ``role`` (viewer < editor < admin) of the request's tenant."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return _unauthorized()
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
            return _unauthorized()
        if not current_user.is_operator:
            abort(403)
        return view(*args, **kwargs)

    wrapped.required_role = "operator"
    return wrapped


def public(view):
    """Mark a view as open to everyone (sign-in, sign-up); the route matrix expects a mark on every view."""
    view.required_role = None
    return view
