"""Blueprints. Views stay thin: they parse the request, call a plain function, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect
from werkzeug.wrappers import Response

from tenants.db import db


def commit_or_show_error(change: Callable[[], Any], errors: type[Exception] | tuple[type[Exception], ...],
                         done: str | Callable[[Any], str], back: str | Callable[[Any], str], *,
                         failed_back: str | None = None,
                         error_text: Callable[[Exception], str] = str) -> Response:
    """Run ``change()`` in the request's transaction; the one way a form action ends.

    On one of ``errors`` the transaction is rolled back and the error's message (``error_text(exc)``; the
    default is its text as it is) is shown as "danger", then the browser goes to ``failed_back`` (default
    ``back``, which must then be given). Otherwise the transaction is
    committed (side effects registered with ``tenants.db.after_commit`` run now), ``done`` is shown as
    "success" and the browser goes to ``back``. A callable ``done`` or ``back`` is called after the commit
    with what ``change()`` returned, when it may read what was saved (a new object's id, say).
    """
    try:
        result = change()
    except errors as exc:
        db.session.rollback()
        flash(error_text(exc), "danger")
        return redirect(failed_back or back)
    db.session.commit()
    flash(done(result) if callable(done) else done, "success")
    return redirect(back(result) if callable(back) else back)
