"""Database bootstrap and migrations.

``bootstrap`` is the one step that needs a PostgreSQL superuser. It creates:

``egov_owner`` (EGOV_DB_OWNER_ROLE)
    Owns the database, the schemas and every table; runs migrations. Not
    superuser and not BYPASSRLS: because every tenant table FORCEs row-level
    security, a mistaken connection as the owner sees no tenant rows.
``egov_app`` (EGOV_DB_APP_ROLE)
    What portal and workers connect as. Not owner, not superuser, not
    BYPASSRLS, NOINHERIT; holds only the grants the migrations give it.

``egov_owner_roles``
    NOLOGIN, CREATEROLE, granted to the owner: owns the functions that create
    the per-tenant Superset login roles (migration 0004).

Later steps add roles only where they need them (see docs/architecture.md).
All statements are composed with ``psycopg.sql`` from names in the settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
from psycopg import sql

from tenants.settings import PROJECT_ROOT, Settings


def _ensure_role(cur, name: str, password: str, extra: str) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS " + extra
    cur.execute(
        sql.SQL("{} ROLE {} " + attributes + " PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(name), sql.Literal(password)
        )
    )


def role_admin(settings: Settings) -> str:
    return settings.owner_role + "_roles"


def _ensure_role_admin(cur, settings: Settings) -> None:
    """``<owner>_roles``: NOLOGIN with CREATEROLE, granted to the owner.

    It owns the SECURITY DEFINER functions that create and drop the per-tenant
    Superset login roles (migration 0004); nobody logs in as it, and the app
    reaches it only through those functions.
    """
    name = sql.Identifier(role_admin(settings))
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role_admin(settings),))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(sql.SQL("{} ROLE {} NOLOGIN NOSUPERUSER NOCREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS").format(
        sql.SQL(verb), name))
    cur.execute(sql.SQL("GRANT {} TO {}").format(name, sql.Identifier(settings.owner_role)))


#: Catalogue relations that describe other roles, databases and sessions of the cluster. PUBLIC
#: may read them by default; a tenant's Superset login role (SQL Lab) must not learn from them
#: which other tenants exist or what they run. The platform's own roles get them back.
CATALOGUE_RELATIONS = ("pg_roles", "pg_user", "pg_auth_members", "pg_group", "pg_database", "pg_db_role_setting",
                       "pg_shdescription", "pg_stat_activity", "pg_stat_database", "pg_locks", "pg_prepared_xacts",
                       "pg_stat_ssl", "pg_stat_gssapi", "pg_settings", "pg_stat_replication", "pg_replication_slots")
#: Functions PUBLIC may call by default that let a session lift its own limits (``set_config``
#: can change ``statement_timeout`` from inside a SELECT), hold locks other tenants' loads and
#: the nightly jobs wait for (advisory locks, whose keys are guessable), or name other roles.
SESSION_FUNCTIONS = (
    "set_config(text, text, boolean)", "pg_get_userbyid(oid)",
    *(f"{name}({args})" for name in ("pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
                                     "pg_advisory_xact_lock_shared", "pg_try_advisory_lock",
                                     "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock",
                                     "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock",
                                     "pg_advisory_unlock_shared")
      for args in ("bigint", "integer, integer")),
    "pg_advisory_unlock_all()",
)


def _harden_database(settings: Settings) -> None:
    """Take from PUBLIC, in the platform database, what a tenant's session could use against others.

    Needs the superuser (the catalogue belongs to it); the owner, the application role and the
    role administrator get everything back. Runs at every bootstrap, so a new PostgreSQL minor
    release's defaults are revoked again. Tenants' Superset login roles and the benchmark reader
    are left with what PUBLIC keeps: ``statement_timeout`` and friends can still be changed with
    ``SET``, which SQL Lab refuses and the watchdog (``portal.superset_end_overrunning``) backs up.
    """
    trusted = [sql.Identifier(name) for name in (settings.owner_role, settings.app_role, role_admin(settings))]
    with psycopg.connect(_admin_url_for(settings), autocommit=True) as conn:
        for relation in CATALOGUE_RELATIONS:
            target = sql.SQL("pg_catalog.{}").format(sql.Identifier(relation))
            conn.execute(sql.SQL("REVOKE SELECT ON {} FROM PUBLIC").format(target))
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(target, sql.SQL(", ").join(trusted)))
        for function in SESSION_FUNCTIONS:
            # The signatures are constants of this module, not input.
            conn.execute(sql.SQL(f"REVOKE EXECUTE ON FUNCTION pg_catalog.{function} FROM PUBLIC"))
            conn.execute(sql.SQL(f"GRANT EXECUTE ON FUNCTION pg_catalog.{function} TO {{}}").format(
                sql.SQL(", ").join(trusted)))
        # The role administrator ends overrunning tenant sessions and locks out suspended tenants
        # (migration 0010); both need to see and signal other roles' backends.
        conn.execute(sql.SQL("GRANT pg_signal_backend, pg_read_all_stats TO {}").format(
            sql.Identifier(role_admin(settings))))


def _admin_url_for(settings: Settings) -> str:
    """The superuser's URL, pointed at the platform database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(settings.admin_database_url)
    return urlunsplit(parts._replace(path="/" + settings.database_name))


def bootstrap(settings: Settings) -> None:
    """Create the roles and the database; safe to run again (it converges)."""
    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn, conn.cursor() as cur:
        _ensure_role(cur, settings.owner_role, settings.owner_password, "INHERIT")
        _ensure_role(cur, settings.app_role, settings.app_password, "NOINHERIT CONNECTION LIMIT 200")
        _ensure_role_admin(cur, settings)
        # Reads the published benchmark figures and nothing else (grants in migration 0006).
        # An empty password clears it: the role then cannot sign in with a password.
        _ensure_role(cur, settings.benchmark_role, settings.benchmark_password, "NOINHERIT CONNECTION LIMIT 20")
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.database_name,))
        if not cur.fetchone():
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(settings.database_name), sql.Identifier(settings.owner_role)
                )
            )
        db = sql.Identifier(settings.database_name)
        cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        cur.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, sql.Identifier(settings.app_role))
        )
        cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, sql.Identifier(settings.benchmark_role)))
    _harden_database(settings)


def bootstrap_superset_metadata(settings: Settings) -> bool:
    """Role and database for Superset's metadata (same name); True when the database is new."""
    name = settings.superset_meta_database
    role, database = sql.Identifier(name), sql.Identifier(name)
    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        attributes = "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD {}"
        conn.execute(sql.SQL("{} ROLE {} " + attributes).format(
            sql.SQL("ALTER" if exists else "CREATE"), role, sql.Literal(settings.superset_meta_password)))
        marker = _superset_key_marker(settings)
        found = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                             (name,)).fetchone()
        if found and found[0] == marker:
            return False
        if found:
            _drop_foreign_superset_metadata(conn, settings, database)
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(database, role))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(database, sql.Literal(marker)))
        return True


def _superset_key_marker(settings: Settings) -> str:
    """Names the secret key Superset's metadata was written with (a digest, never the key)."""
    return "egovsad superset metadata, key " + hashlib.sha256(settings.superset_secret_key.encode()).hexdigest()[:16]


def _drop_foreign_superset_metadata(conn, settings: Settings, database) -> None:
    """Superset encrypts connection passwords with its secret key: metadata written under another key
    answers every API call with "Invalid decryption key". Outside production (a fresh checkout on a
    machine that ran another one) it is rebuilt; in production that needs a person.
    """
    if settings.is_production:
        raise RuntimeError(f"Superset's metadata database {settings.superset_meta_database} was written with "
                           "another EGOV_SUPERSET_SECRET_KEY; restore that key (see docs/operations.md).")
    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(database))


def drop_database(settings: Settings) -> None:
    """Drop the platform database (tests and ``make clean`` only)."""
    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(settings.database_name))
        )


def alembic_config(settings: Settings):
    from alembic.config import Config

    config = Config(str(Path(PROJECT_ROOT) / "alembic.ini"))
    config.attributes["url"] = settings.sqlalchemy_url(settings.migration_database_url)
    config.attributes["app_role"] = settings.app_role
    config.attributes["owner_role"] = settings.owner_role
    config.attributes["benchmark_role"] = settings.benchmark_role
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(settings), revision)


def rebuild(settings: Settings) -> None:
    """A clean database at the current schema with the reference data (tests and benchmarks only)."""
    from sqlalchemy import create_engine

    from tenants.refdata import load_regions

    drop_database(settings)
    bootstrap(settings)
    upgrade(settings)
    engine = create_engine(settings.sqlalchemy_url(settings.migration_database_url))
    with engine.begin() as conn:
        load_regions(conn)
    engine.dispose()
