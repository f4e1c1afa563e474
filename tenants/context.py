"""The one place that says which tenant the database works for.

PostgreSQL row-level security filters every tenant table on the
transaction-local setting ``app.tenant_id``. This module is the only code
that sets it, and it only ever sets it with ``set_config(..., true)``, which
ends with the transaction: a pooled connection handed to the next request or
job carries nothing over (a session-level ``SET`` would, see
docs/architecture.md).

How it works: the tenant of the current unit of work lives in a
``ContextVar``. Whenever an ORM session begins a transaction, the
``after_begin`` hook copies it into the transaction. With no tenant the
setting is empty and every policy matches nothing: the code fails closed.

* Jobs, CLI commands and anything that is not a web request use
  :func:`tenant_transaction`.
* Work outside any tenant says so by its name, so that one grep for ``platform_`` shows every place that
  works outside a tenant's binding: :func:`platform_transaction` (control-plane tables, no tenant) and
  :func:`platform_acting_for` (control-plane work that touches one tenant's rows inside a request).
* Web requests call :func:`bind_tenant` once, when the request's tenant has
  been resolved (see ``portal.tenancy``); every transaction of the request
  then runs for that tenant.
* Raw connections (bulk loads) call :func:`apply_tenant` inside their own
  transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from tenants.db import db

_current_tenant: ContextVar[int | None] = ContextVar("current_tenant", default=None)

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant, true)")


def current_tenant_id() -> int | None:
    """The tenant the current unit of work runs for, or None."""
    return _current_tenant.get()


def apply_tenant(connection, tenant_id: int | None) -> None:
    """Set the tenant for the connection's current transaction only."""
    connection.execute(_SET_TENANT, {"tenant": "" if tenant_id is None else str(int(tenant_id))})


@event.listens_for(Session, "after_begin")
def _apply_on_begin(session, transaction, connection) -> None:
    apply_tenant(connection, _current_tenant.get())


def bind_tenant(tenant_id: int | None) -> Token:
    """Make ``tenant_id`` the tenant of the rest of this context (a web request).

    A transaction that is already open gets the setting as well, so that it
    does not matter whether something read the database before the tenant was
    resolved. Returns the token for :func:`unbind_tenant`.
    """
    token = _current_tenant.set(tenant_id)
    if db.session().in_transaction():
        apply_tenant(db.session.connection(), tenant_id)
    return token


def unbind_tenant(token: Token) -> None:
    _current_tenant.reset(token)


@contextmanager
def tenant_transaction(tenant_id: int | None, session: Session | None = None) -> Iterator[Session]:
    """Run one transaction for ``tenant_id``; commit on success, roll back on error.

    Work with no tenant is :func:`platform_transaction`, which says so in its name.

    :raise RuntimeError: when the session is already inside a transaction:
        mixing two tenants in one transaction is never intended.
    """
    session = session or db.session()
    if session.in_transaction():
        raise RuntimeError("tenant_transaction() needs a session without an open transaction")
    token = _current_tenant.set(tenant_id)
    try:
        with session.begin():
            yield session
    finally:
        _current_tenant.reset(token)


def platform_transaction(session: Session | None = None):
    """One transaction outside any tenant (control plane: the registry, operators, platform audit).

    Tenant tables then look empty and refuse writes, which is what control-plane work wants. Commit on success,
    roll back on error; the same refusal of an open transaction as :func:`tenant_transaction`.
    """
    return tenant_transaction(None, session)


@contextmanager
def platform_acting_for(tenant_id: int) -> Iterator[None]:
    """Inside a request, do one piece of work for ``tenant_id`` and switch back.

    For control-plane work that touches exactly one tenant's rows in the same
    transaction: a sign-up creating the tenant and its identity-provider row, an
    operator acting on a tenant. The previous tenant (usually none) is put back
    into the open transaction afterwards.
    """
    previous = _current_tenant.get()
    token = bind_tenant(tenant_id)
    try:
        yield
    finally:
        unbind_tenant(token)
        if db.session().in_transaction():
            apply_tenant(db.session.connection(), previous)
