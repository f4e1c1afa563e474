"""Migrations run from empty to head, back down to empty, and up again."""

import os

import pytest
from sqlalchemy import create_engine, text

from tenants.settings import load_settings


@pytest.fixture
def scratch(database):
    from tenants.database import bootstrap, drop_database

    settings = load_settings({**os.environ, "EGOV_DATABASE_NAME": database.database_name + "_migrations"})
    drop_database(settings)
    bootstrap(settings)
    yield settings
    drop_database(settings)


def _schemas(settings):
    engine = create_engine(settings.sqlalchemy_url(settings.migration_database_url))
    with engine.connect() as conn:
        names = set(conn.execute(text(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('portal', 'analytics')"
        )).scalars())
        tables = conn.execute(text(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('portal', 'analytics') AND c.relkind IN ('r', 'p')"
        )).scalar()
    engine.dispose()
    return names, tables


def test_upgrade_downgrade_upgrade(scratch):
    from tenants.database import downgrade, upgrade

    upgrade(scratch)
    names, tables = _schemas(scratch)
    assert names == {"portal", "analytics"} and tables >= 20
    downgrade(scratch, "base")
    assert _schemas(scratch) == (set(), 0)
    upgrade(scratch)
    assert _schemas(scratch)[1] == tables


def test_bootstrap_twice_converges(scratch):
    from tenants.database import bootstrap

    bootstrap(scratch)
    bootstrap(scratch)
    engine = create_engine(scratch.sqlalchemy_url())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == scratch.app_role
    engine.dispose()
