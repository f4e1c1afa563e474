"""Alembic environment: runs as the schema owner, never as superuser.

The owner and application role names are handed to the migration scripts in
``config.attributes`` so GRANTs follow the settings.
"""

from alembic import context
from sqlalchemy import create_engine, pool

from tenants.settings import load_settings

config = context.config
settings = load_settings()
config.attributes.setdefault("app_role", settings.app_role)
config.attributes.setdefault("owner_role", settings.owner_role)
config.attributes.setdefault("benchmark_role", settings.benchmark_role)


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    url = config.attributes.get("url") or settings.sqlalchemy_url(settings.migration_database_url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(connection=connection, version_table_schema="public", transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported: run them against the database.")
run_migrations_online()
