"""Backups and restores of the whole platform state: both databases and the secrets that unlock them.

A backup is one directory ``egovsad-<UTC time>/`` (mode 0700) holding

``platform.dump``
    ``pg_dump --format=custom`` of the platform database (every tenant's rows: taken as the superuser,
    because row-level security is forced even for the owner).
``superset.dump``
    the same of Superset's metadata database (dashboards, charts, roles, saved queries).
``secrets.env``
    every secret the two dumps need (mode 0600): the Fernet keys of the stored client secrets, Superset's
    secret key (it encrypts the stored connection passwords), the database passwords, the session and
    guest-token keys, as ``EGOV_<NAME>=value`` lines a shell or ``--env-file`` reads.
``keys/``
    the OIDC signing key and the published keys (``EGOV_OIDC_SIGNING_KEY_FILE``, ``..._PUBLISHED_KEY_FILES``).
``manifest.json``
    when, the schema revision, the databases and the row count of every table, which a restore checks.

A restore goes into *fresh* databases (it refuses to write over existing ones): roles and the empty database
as ``egov db bootstrap`` makes them, then ``pg_restore``, then the row counts compared with the manifest. The
tenants' Superset login roles live in the cluster, not in a database; ``egov superset provision`` recreates
them from the passwords kept (encrypted) in the restored database. docs/operations.md has the runbook.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from tenants.settings import PREFIX, Settings

#: Settings that ``secrets.env`` records: (environment name without prefix, Settings attribute).
SECRETS = (
    ("SECRET_KEY", "secret_key"), ("ENCRYPTION_KEYS", "encryption_keys"),
    ("DB_OWNER_PASSWORD", "owner_password"), ("DB_APP_PASSWORD", "app_password"),
    ("DB_BENCHMARK_PASSWORD", "benchmark_password"),
    ("SUPERSET_SECRET_KEY", "superset_secret_key"), ("SUPERSET_GUEST_SECRET", "superset_guest_secret"),
    ("SUPERSET_ADMIN_PASSWORD", "superset_admin_password"), ("SUPERSET_OIDC_SECRET", "superset_oidc_secret"),
    ("SUPERSET_META_PASSWORD", "superset_meta_password"),
)
DUMPS = (("platform", "database_name"), ("superset", "superset_meta_database"))


class BackupError(RuntimeError):
    """A backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class RestoreReport:
    """What a restore brought back: ``{database: {table: rows}}`` as counted after the restore."""

    directory: Path
    revision: str
    counts: dict[str, dict[str, int]]


def _pg_environment(settings: Settings, database: str) -> dict[str, str]:
    """libpq variables for the superuser on ``database`` (no password on a command line)."""
    parts = urlsplit(settings.admin_database_url)
    env = {**os.environ, "PGHOST": parts.hostname or "127.0.0.1", "PGPORT": str(parts.port or 5432),
           "PGUSER": unquote(parts.username or "postgres"), "PGDATABASE": database}
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return env


def _admin_connect(settings: Settings, database: str):
    env = _pg_environment(settings, database)
    return psycopg.connect(host=env["PGHOST"], port=env["PGPORT"], user=env["PGUSER"], dbname=database,
                           password=env.get("PGPASSWORD"), autocommit=True)


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def table_counts(settings: Settings, database: str) -> dict[str, int]:
    """``{"schema.table": rows}`` of every ordinary and partitioned table outside the catalogue (superuser:
    row-level security does not hide rows from it)."""
    with _admin_connect(settings, database) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
            "ORDER BY 1, 2").fetchall()
        return {f"{schema}.{table}": conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table))).fetchone()[0] for schema, table in tables}


def database_grants(settings: Settings, database: str) -> list[list[str]]:
    """``[[role, privilege], ...]`` granted on the database itself (e.g. CONNECT for the tenants' Superset
    readers, migration 0004): ``pg_dump`` without ``--create`` leaves them out, so the backup records them."""
    with _admin_connect(settings, "postgres") as conn:
        return [list(row) for row in conn.execute(
            "SELECT r.rolname, a.privilege_type FROM pg_database d, aclexplode(d.datacl) a "
            "JOIN pg_roles r ON r.oid = a.grantee WHERE d.datname = %s ORDER BY 1, 2", (database,))]


def _grant_on_database(settings: Settings, database: str, grants: list[list[str]]) -> None:
    """Grant again what the backup recorded, to the roles this cluster has (the tenants' login roles come
    back with ``egov superset provision``; the group roles they belong to are made by bootstrap and
    the migrations' functions)."""
    with _admin_connect(settings, "postgres") as conn:
        for role, privilege in grants:
            if privilege not in ("CONNECT", "TEMPORARY", "CREATE"):
                continue
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                    sql.SQL(privilege), sql.Identifier(database), sql.Identifier(role)))


def _ensure_reader_group(settings: Settings) -> None:
    """The group of the tenants' Superset login roles (``<database>_ss_readers``, migration 0004) is a cluster
    role the dump grants to; on a new server it has to exist before ``pg_restore``."""
    group = settings.database_name + "_ss_readers"
    with _admin_connect(settings, "postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone():
            # Made by the role administrator, as the migration makes it: never GRANTed to the administrator,
            # whose member the owner is; the group's restrictive policies would then hide every row from it.
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(settings.owner_role + "_roles")))
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(sql.Identifier(group)))
            conn.execute("RESET ROLE")


def _revision(settings: Settings) -> str:
    with _admin_connect(settings, settings.database_name) as conn:
        return ",".join(r[0] for r in conn.execute("SELECT version_num FROM public.alembic_version"))


def _secret_lines(settings: Settings) -> str:
    lines = []
    for name, attribute in SECRETS:
        value = getattr(settings, attribute)
        value = ",".join(value) if isinstance(value, tuple) else value
        if value:
            lines.append(f"{PREFIX}{name}={value}")
    return "\n".join(lines) + "\n"


def _key_fingerprints(settings: Settings) -> dict[str, str]:
    """Digests (never the secrets) that tell a restore whether it runs with the backup's keys."""
    from tenants.database import _superset_key_marker

    return {"superset_secret_key": _superset_key_marker(settings),
            "encryption_keys": [hashlib.sha256(k.encode()).hexdigest()[:16] for k in settings.encryption_keys]}


def backup(settings: Settings, directory: Path) -> Path:
    """Write a backup into a new directory under ``directory``; returns it.

    :raise BackupError: ``pg_dump`` failed (its message is included); the partial directory is removed.
    """
    target = Path(directory) / ("egovsad-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    target.mkdir(parents=True, mode=0o700)
    try:
        manifest = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), "revision": _revision(settings),
                    "databases": {}, "keys": _key_fingerprints(settings)}
        for name, attribute in DUMPS:
            database = getattr(settings, attribute)
            counts = table_counts(settings, database)  # counted before the dump: the dump holds at least these
            _run(["pg_dump", "--format=custom", "--file", str(target / f"{name}.dump")],
                 _pg_environment(settings, database))
            manifest["databases"][name] = {"name": database, "tables": counts,
                                           "grants": database_grants(settings, database)}
        secrets_file = target / "secrets.env"
        secrets_file.touch(mode=0o600)
        secrets_file.write_text(_secret_lines(settings))
        keys = target / "keys"
        keys.mkdir(mode=0o700)
        for index, name in enumerate((settings.oidc_signing_key_file, *settings.oidc_published_key_files)):
            if Path(name).exists():
                copy = keys / ("signing.pem" if index == 0 else f"published-{index}.pem")
                shutil.copyfile(name, copy)
                copy.chmod(0o600)
        (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def _database_exists(settings: Settings, database: str) -> bool:
    with _admin_connect(settings, "postgres") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None


def restore(settings: Settings, source: Path) -> RestoreReport:
    """Restore the backup in ``source`` into fresh databases named by ``settings``.

    ``settings`` must carry the backup's secrets (``secrets.env``): the restored client secrets and Superset's
    connection passwords are readable only with them.

    :raise BackupError: a target database exists already, the secrets are not the backup's, ``pg_restore``
        failed, or a table has fewer rows than the manifest recorded.
    """
    from tenants.database import bootstrap, bootstrap_superset_metadata

    source = Path(source)
    manifest = json.loads((source / "manifest.json").read_text())
    keys = _key_fingerprints(settings)
    if keys["superset_secret_key"] != manifest["keys"]["superset_secret_key"] or not set(
            manifest["keys"]["encryption_keys"]) & set(keys["encryption_keys"]):
        raise BackupError(f"The configured secrets are not the backup's: load {source / 'secrets.env'} into the "
                          "environment first (EGOV_SUPERSET_SECRET_KEY and EGOV_ENCRYPTION_KEYS must match).")
    for _, attribute in DUMPS:
        if _database_exists(settings, getattr(settings, attribute)):
            raise BackupError(f"Database {getattr(settings, attribute)} exists; a restore writes only into fresh "
                              "databases (drop or rename it first, see docs/operations.md).")
    bootstrap(settings)
    bootstrap_superset_metadata(settings)
    _ensure_reader_group(settings)
    counts = {}
    for name, attribute in DUMPS:
        database = getattr(settings, attribute)
        _run(["pg_restore", "--exit-on-error", "--dbname", database, str(source / f"{name}.dump")],
             _pg_environment(settings, database))
        _grant_on_database(settings, database, manifest["databases"][name]["grants"])
        counts[name] = table_counts(settings, database)
        short = {table: (rows, counts[name].get(table, 0))
                 for table, rows in manifest["databases"][name]["tables"].items()
                 if counts[name].get(table, 0) < rows}
        if short:
            raise BackupError(f"{database}: fewer rows than backed up (table: backed up, restored): {short}")
    return RestoreReport(source, manifest["revision"], counts)
