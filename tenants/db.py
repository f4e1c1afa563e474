"""The data layer shared by portal and workers.

``db`` is the Flask-SQLAlchemy object; ``create_app`` binds it with
``db.init_app``. Workers and the CLI run inside an app context, so they use
the very same sessions, pool and tenant hook as web requests.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.orm import DeclarativeBase, Session

# Deterministic constraint names keep migrations and models comparable.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


# -- side effects after commit ----------------------------------------------------------------------------------

_AFTER_COMMIT = "egov_after_commit"


def after_commit(session: Session, callback: Callable[[], object], key: Hashable | None = None) -> None:
    """Run ``callback()`` once the session's current transaction has committed; drop it if it rolls back.

    The one way to cause a side effect of a transaction outside the database (queue a job, start provisioning,
    sync Superset's access): a job queued before the commit may run before its rows exist, or for rows a
    rollback then removes (in the manner of Zulip's ``send_event_on_commit``). Callbacks run in the order
    given, outside any transaction, and may not use this session; an exception from one propagates from
    ``commit()`` (the data is committed).

    :param key: a callback whose key was given before in the same transaction is not added again (one
        access sync per tenant, however many flushes changed its people).
    """
    pending = session.info.setdefault(_AFTER_COMMIT, {})
    pending.setdefault(object() if key is None else key, callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, {}).values():
        callback()


@event.listens_for(Session, "after_transaction_end")
def _drop_after_rollback(session: Session, transaction) -> None:
    # The outermost transaction ended without after_commit taking the callbacks: it rolled back. A savepoint
    # that rolls back (nested, with a parent) leaves them to the transaction around it.
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)
