"""Signed-in sessions: a fresh session id at sign-in, idle timeout, revocation.

Flask keeps the session in a signed cookie. On top of it every signed-in
session carries a random session id that is registered in Redis with the idle
timeout as its lifetime:

* sign-in clears the whole session (no value from before sign-in survives,
  the classic session-fixation defence) and issues a new id;
* every request touches the key, so the timeout counts from the last request;
* a session whose id is gone from Redis (idle too long, signed out, or revoked)
  is treated as signed out, even if someone kept a copy of the cookie.

Why not server-side sessions: the cookie holds only a few short values and the
Redis key makes it revocable, which is what server-side sessions would buy; see
docs/architecture.md.
"""

from __future__ import annotations

import json
import secrets

from flask import Flask, g, session
from flask_login import login_user, logout_user

from tenants.jobs import redis_connection
from tenants.settings import get_settings, settings_of

SID = "sid"
KEY = "egov:session:{}"



def _idle_seconds() -> int:
    return get_settings().session_idle_minutes * 60


def record(identity: str, **extra) -> str:
    """The Redis value of a session: the identity plus server-side extras (the ID token for logout).

    The ID token stays out of the cookie: with many group claims it can exceed what a cookie holds,
    and a signed cookie is readable by whoever holds it.
    """
    return json.dumps({"identity": identity, **extra})


def start_session(principal, **extra) -> None:
    """Sign ``principal`` in with a brand-new session; ``extra`` values are kept server-side."""
    session.clear()
    sid = secrets.token_urlsafe(32)
    redis_connection().set(KEY.format(sid), record(principal.get_id(), **extra), ex=_idle_seconds())
    session[SID] = sid
    session.permanent = True
    login_user(principal)


def session_value(name: str):
    """A server-side extra of the current session (see :func:`start_session`), or None."""
    return g.get("session_record", {}).get(name)


def end_session() -> None:
    """Sign out: the id is removed from Redis and the cookie emptied."""
    sid = session.get(SID)
    if sid:
        redis_connection().delete(KEY.format(sid))
    logout_user()
    session.clear()


def _check() -> None:
    """Before anything reads the signed-in identity: drop sessions that expired or were revoked."""
    identity = session.get("_user_id")
    if identity is None:
        return
    sid = session.get(SID)
    # GETEX reads and renews in one round trip.
    stored = redis_connection().getex(KEY.format(sid), ex=_idle_seconds()) if sid else None
    data = json.loads(stored) if stored else {}
    if data.get("identity") != identity:
        session.clear()
        g.session_expired = True
        return
    g.session_record = data


def init_app(app: Flask) -> None:
    """Register the check; must run before ``portal.tenancy`` reads the identity."""
    from datetime import timedelta

    app.permanent_session_lifetime = timedelta(minutes=settings_of(app).session_idle_minutes)
    app.before_request(_check)
