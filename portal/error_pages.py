"""The portal's error pages: 403, 404, 405, 410, 429 and 500 in the site's layout, in the user's
language, with a way back.

The API answers with problem documents instead (``portal.views.api``); forms whose limit is
reached re-render themselves with the entries kept (sign-in here, sign-up and the identity
provider in their blueprints), so a 429 never loses what someone typed.
"""

from __future__ import annotations

from flask import Flask, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.tenancy import current_tenant

PAGES = (403, 404, 405, 410, 429, 500)


def _texts(code: int) -> tuple[str, str]:
    return {
        403: (_("No access"), _("Your role does not allow this page. If you need it, ask your municipality's "
                                "administrator for a higher role.")),
        404: (_("Page not found"), _("This address does not exist (any more). Check it, or go on from the start "
                                     "page.")),
        405: (_("Not possible this way"), _("This page cannot be used like this. Go back and use its buttons.")),
        410: (_("No longer available"), _("What was published here has been withdrawn.")),
        429: (_("Too many requests"), _("Please wait a moment and try again.")),
        500: (_("Something went wrong"), _("An error occurred on our side. It has been logged; nothing you "
                                           "entered was saved. Please try again later.")),
    }[code]


def home_url() -> str:
    """Where "start page" leads: the signed-in person's own start, otherwise the public one."""
    if current_user.is_authenticated:
        if current_user.is_operator:
            return url_for("operator.index")
        if current_tenant() is not None:
            return url_for("tenant_home.index", ags=current_tenant().ags)
    return url_for("main.index")


def _retry_after(exc: HTTPException) -> int | None:
    for header, value in exc.get_headers():
        if header.lower() == "retry-after" and value.isdigit():
            return int(value)
    return None


def error_page(exc: HTTPException):
    """Render ``exc`` as the styled page; its headers (``Retry-After``) are kept."""
    code = exc.code if exc.code in PAGES else 500
    title, text = _texts(code)
    # Back to the page the person came from, only within the portal.
    referrer = request.referrer if request.referrer and request.referrer.startswith(request.host_url) else None
    body = render_template("error.html", code=code, title=title, text=text, back_url=referrer,
                           home_url=home_url(), retry_after=_retry_after(exc) if code == 429 else None)
    headers = [(h, v) for h, v in exc.get_headers() if h.lower() == "retry-after"]
    return body, code, headers


def not_found(_exc=None):
    """A missing or foreign object (``tenants.errors.NotFound``): the API's problem document under /api/,
    the styled page elsewhere."""
    from werkzeug.exceptions import NotFound

    from portal.views.api import _unrouted_problem

    return _unrouted_problem(NotFound())


def _internal_error(exc):
    if not isinstance(exc, HTTPException):
        exc = InternalServerError()
    return error_page(exc)


def init_app(app: Flask) -> None:
    for code in (403, 404, 405, 410, 429):
        app.register_error_handler(code, error_page)
    app.register_error_handler(500, _internal_error)
