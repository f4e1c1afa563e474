"""Install, initialise, start and stop Superset (``make up`` and the tests).

Superset 6.1.0 lives in its own venv because its dependencies (SQLAlchemy
1.4, psycopg2) clash with the portal's. The install pins are the ones
../shared/notes/superset-6.1.md found necessary: Flask-Caching 2.5 breaks
every command, ``rich`` and ``cachetools`` are missing from its metadata.

Everything here is idempotent: a second call finds the venv, the metadata
database and the service account and only converges passwords.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import requests

from tenants.settings import PROJECT_ROOT, Settings

VENV = PROJECT_ROOT / ".venv-superset"
CONFIG = PROJECT_ROOT / "superset_config" / "superset_config.py"
#: superset_config/requirements.txt, shared with the superset image (docker/Containerfile.superset).
PINS = [line.strip() for line in (PROJECT_ROOT / "superset_config" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")]
#: Written into the venv once its packages match PINS and its static files are compressed.
STAMP = VENV / ".egov-pins"
#: The portal's service account in Superset (provisioning, admin API).
SERVICE_USER = "egov_portal"


def _bin(name: str) -> str:
    return str(VENV / "bin" / name)


def installed() -> bool:
    return (Path(_bin("superset")).exists() and Path(_bin("gunicorn")).exists()
            and STAMP.exists() and STAMP.read_text() == _stamp())


def _stamp() -> str:
    return " ".join(PINS) + "\n"


def install(log=sys.stdout) -> None:
    """Create .venv-superset and install the pinned Superset (about a minute); an older venv gets the new pins."""
    if installed():
        return
    if not Path(_bin("pip")).exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [_bin("pip"), "install", "--disable-pip-version-check", "-q"]
        subprocess.run(pip + ["--upgrade", "pip", "setuptools", "wheel"], check=True, stdout=log, stderr=log)
    pip = [_bin("pip"), "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + PINS + ["gunicorn"], check=True, stdout=log, stderr=log)
    compress_static(log)
    STAMP.write_text(_stamp())


def compress_static(log=sys.stdout) -> None:
    """A ``.gz`` beside each compressible front-end file of Superset's, once (about 7 s); WhiteNoise sends it.

    gzip only: Brotli at WhiteNoise's quality takes minutes for Superset's 100 MB, and in
    production the reverse proxy compresses anyway.
    """
    code = "import superset, pathlib; print(pathlib.Path(superset.__file__).parent / 'static')"
    static = subprocess.run([_bin("python"), "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([_bin("python"), "-m", "whitenoise.compress", "-q", "--no-brotli", static],
                   check=True, stdout=log, stderr=log)


def meta_role(settings: Settings) -> str:
    return settings.superset_meta_database


def meta_url(settings: Settings) -> str:
    server = urlsplit(settings.database_url)  # Superset's metadata lives on the platform's PostgreSQL
    return (f"postgresql+psycopg2://{quote(meta_role(settings))}:{quote(settings.superset_meta_password, safe='')}"
            f"@{server.hostname or '127.0.0.1'}:{server.port or 5432}/{quote(settings.superset_meta_database)}")


def environment(settings: Settings, url: str | None = None, portal_url: str | None = None) -> dict[str, str]:
    """The environment Superset's process needs (read by superset_config.py)."""
    return {
        **os.environ,
        "SUPERSET_CONFIG_PATH": str(CONFIG),
        "SUPERSET_HOME": str(settings.var_dir / "superset"),
        "FLASK_APP": "superset",
        "EGOV_PORTAL_URL": portal_url or settings.portal_url,
        "EGOV_PORTAL_INTERNAL_URL": settings.portal_internal_url or portal_url or settings.portal_url,
        "EGOV_SUPERSET_URL": url or settings.superset_url,
        # Browsers' address of Superset: the guest tokens' audience.
        "EGOV_SUPERSET_PUBLIC_URL": settings.superset_url,
        "EGOV_SUPERSET_SECRET_KEY": settings.superset_secret_key,
        "EGOV_SUPERSET_GUEST_SECRET": settings.superset_guest_secret,
        "EGOV_SUPERSET_OIDC_SECRET": settings.superset_oidc_secret,
        "EGOV_SUPERSET_META_URL": meta_url(settings),
        "EGOV_SUPERSET_REDIS_URL": settings.superset_redis_url,
        "EGOV_SUPERSET_LIMITS_URL": settings.superset_limits_url,
    }


def meta_dsn(settings: Settings) -> str:
    """:func:`meta_url` for psycopg (Superset's SQLAlchemy names its driver in the scheme)."""
    return meta_url(settings).replace("postgresql+psycopg2://", "postgresql://")


def _initialised(settings: Settings) -> bool:
    try:
        with psycopg.connect(meta_dsn(settings)) as conn:
            row = conn.execute(
                "SELECT 1 FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
                "JOIN ab_role r ON r.id = ur.role_id WHERE u.username = %s AND r.name = 'Admin'",
                (SERVICE_USER,)).fetchone()
            return row is not None
    except psycopg.Error:
        return False


def _set_service_password(settings: Settings) -> None:
    """Converge the service account's password to the configured one (FAB stores a werkzeug hash)."""
    from werkzeug.security import generate_password_hash

    with psycopg.connect(meta_dsn(settings)) as conn:
        conn.execute("UPDATE ab_user SET password = %s, active = true WHERE username = %s",
                     (generate_password_hash(settings.superset_admin_password), SERVICE_USER))


def initialise(settings: Settings, log=sys.stdout) -> None:
    """Metadata database, schema, service account and built-in roles (about 20-40 s the first time)."""
    from tenants.database import bootstrap_superset_metadata

    bootstrap_superset_metadata(settings)
    if not _initialised(settings):
        env = environment(settings)
        (settings.var_dir / "superset").mkdir(parents=True, exist_ok=True)
        run = {"check": True, "env": env, "stdout": log, "stderr": log}
        subprocess.run([_bin("superset"), "db", "upgrade"], **run)
        subprocess.run([_bin("superset"), "fab", "create-admin", "--username", SERVICE_USER, "--firstname", "eGovSAD",
                        "--lastname", "Portal", "--email", "portal@egovsad.invalid",
                        "--password", settings.superset_admin_password], **run)
        subprocess.run([_bin("superset"), "init"], **run)
    _set_service_password(settings)
    ensure_indexes(settings)


#: Indexes Superset's schema lacks for look-ups made on every guest chart request (the stored answers' data
#: version, superset_config/answers.py; Superset's own answers read the same rows): an embedding by its UUID,
#: a dataset's columns, metrics and row rules, a rule's roles. Without them each look-up reads the whole
#: table, which grows with every tenant. Named ``egov_*`` so that no migration of Superset's collides.
METADATA_INDEXES = {
    "egov_embedded_dashboards_uuid": ("embedded_dashboards", "uuid"),
    "egov_table_columns_table_id": ("table_columns", "table_id"),
    "egov_sql_metrics_table_id": ("sql_metrics", "table_id"),
    "egov_rls_filter_tables_table_id": ("rls_filter_tables", "table_id"),
    "egov_rls_filter_roles_rls_filter_id": ("rls_filter_roles", "rls_filter_id"),
}


def ensure_indexes(settings: Settings) -> None:
    """:data:`METADATA_INDEXES`, created when missing (at every initialise: also after an upgrade rebuilt a table)."""
    from psycopg import sql

    with psycopg.connect(meta_dsn(settings), autocommit=True) as conn:
        for name, (table, column) in METADATA_INDEXES.items():
            conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(name), sql.Identifier(table), sql.Identifier(column)))


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        return requests.get(url.rstrip("/") + "/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


#: How long :func:`answered_recently` trusts a probe: an answer for a while, silence only briefly.
UP_SECONDS, DOWN_SECONDS = 30.0, 5.0
_probes: dict[str, tuple[float, bool]] = {}
_clock = time.monotonic


def answered_recently(url: str, timeout: float = 1.5) -> bool:
    """:func:`answers`, asked at most every 30 s per process (5 s after no answer).

    For the dashboards page: a view should not wait for a probe. If Superset goes away in
    between, the page's script shows the same notice when the embedding fails.
    """
    now = _clock()
    checked = _probes.get(url)
    if checked is not None and now - checked[0] < (UP_SECONDS if checked[1] else DOWN_SECONDS):
        return checked[1]
    result = answers(url, timeout=timeout)
    _probes[url] = (_clock(), result)
    return result


def default_workers() -> int:
    """One gunicorn process per core: a cached chart answer is CPU work under the GIL; threads cover waits."""
    return max(2, os.cpu_count() or 2)


def gunicorn_command(port: int, workers: int | None = None, host: str = "127.0.0.1") -> list[str]:
    """Never ``--preload``: the workers would share the forked SQLAlchemy pool."""
    return [_bin("gunicorn"), "-w", str(workers or default_workers()), "-k", "gthread", "--threads", "4",
            "--timeout", "120", "-b", f"{host}:{port}", "--access-logfile", "-", "superset.app:create_app()"]


def start(settings: Settings, port: int, log_path: Path, portal_url: str | None = None,
          workers: int | None = None) -> subprocess.Popen:
    """Start gunicorn on 127.0.0.1:port and wait until /health answers."""
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        gunicorn_command(port, workers),
        env=environment(settings, url=url, portal_url=portal_url), stdout=log, stderr=log,
        cwd=str(settings.var_dir), start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Superset exited with {process.returncode}; see {log_path}")
        if answers(url):
            return process
        time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"Superset did not answer on {url} within 120 s; see {log_path}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
