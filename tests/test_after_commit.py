"""Side effects after commit (tenants.db.after_commit): run once after the commit, never after a rollback."""

import pytest

from tenants.context import platform_transaction
from tenants.db import after_commit


def test_a_side_effect_waits_for_the_commit_and_runs_once(app):
    done = []
    with app.app_context():
        with platform_transaction() as session:
            after_commit(session, lambda: done.append("queued"))
            # A savepoint that rolls back (a raced insert) keeps what the transaction still commits.
            with session.begin_nested() as savepoint:
                savepoint.rollback()
            assert done == []
        assert done == ["queued"]
        with platform_transaction():
            pass
    assert done == ["queued"]


def test_a_rolled_back_transaction_causes_no_side_effect(app):
    done = []
    with app.app_context():
        with pytest.raises(RuntimeError), platform_transaction() as session:
            after_commit(session, lambda: done.append("queued"))
            raise RuntimeError("the view failed")
        with platform_transaction():
            pass
    assert done == []


def test_a_keyed_side_effect_runs_once_per_transaction_and_again_in_the_next(app):
    # The Superset access sync registers itself after every flush that changed a tenant's people;
    # one commit must queue it once per tenant, and the next transaction's change queues it again.
    done = []
    with app.app_context():
        for _ in range(2):
            with platform_transaction() as session:
                for tenant_id in (7, 7, 8, 7):
                    after_commit(session, lambda t=tenant_id: done.append(t), key=("sync", tenant_id))
    assert done == [7, 8, 7, 8]
