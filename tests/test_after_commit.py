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
