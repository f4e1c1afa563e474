"""Blueprints. Views stay thin: they parse the request, call a plain function, render."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect
from werkzeug.wrappers import Response

from tenants.db import db


def commit_or_show_error(change: Callable[[], object], errors: type[Exception] | tuple[type[Exception], ...],
                         done: str | Callable[[], str], back: str, *, failed_back: str | None = None,
                         error_text: Callable[[Exception], str] = str) -> Response:
    """Run ``change()`` in the request's transaction; the one way a form action ends.

    On one of ``errors`` the transaction is rolled back and the error's message (``error_text(exc)``; the
    default is its text as it is) is shown as "danger", then the browser goes to ``failed_back`` (default
    ``back``). Otherwise the transaction is committed, ``done`` (a callable is asked after the commit, when it
    may read what was saved) is shown as "success", and the browser goes to ``back``.
    """
    try:
        change()
    except errors as exc:
        db.session.rollback()
        flash(error_text(exc), "danger")
        return redirect(failed_back or back)
    db.session.commit()
    flash(done() if callable(done) else done, "success")
    return redirect(back)
