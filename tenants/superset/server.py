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
PINS = ["apache-superset[postgres]==6.1.0", "flask-caching<2.5", "rich", "cachetools", "Authlib<2"]
#: The portal's service account in Superset (provisioning, admin API).
SERVICE_USER = "egov_portal"


def _bin(name: str) -> str:
    return str(VENV / "bin" / name)


def installed() -> bool:
    return Path(_bin("superset")).exists() and Path(_bin("gunicorn")).exists()


def install(log=sys.stdout) -> None:
    """Create .venv-superset and install the pinned Superset (about a minute)."""
    if installed():
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [_bin("pip"), "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["--upgrade", "pip", "setuptools", "wheel"], check=True, stdout=log, stderr=log)
    subprocess.run(pip + PINS + ["gunicorn"], check=True, stdout=log, stderr=log)


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
        "EGOV_SUPERSET_URL": url or settings.superset_url,
        "EGOV_SUPERSET_SECRET_KEY": settings.superset_secret_key,
        "EGOV_SUPERSET_GUEST_SECRET": settings.superset_guest_secret,
        "EGOV_SUPERSET_OIDC_SECRET": settings.superset_oidc_secret,
        "EGOV_SUPERSET_META_URL": meta_url(settings),
        "EGOV_SUPERSET_REDIS_URL": settings.superset_redis_url,
        "EGOV_SUPERSET_LIMITS_URL": settings.superset_limits_url,
    }


def _initialised(settings: Settings) -> bool:
    url = meta_url(settings).replace("postgresql+psycopg2://", "postgresql://")
    try:
        with psycopg.connect(url) as conn:
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

    url = meta_url(settings).replace("postgresql+psycopg2://", "postgresql://")
    with psycopg.connect(url) as conn:
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


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        return requests.get(url.rstrip("/") + "/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def start(settings: Settings, port: int, log_path: Path, portal_url: str | None = None,
          workers: int = 2) -> subprocess.Popen:
    """Start gunicorn on 127.0.0.1:port and wait until /health answers.

    Never ``--preload``: the workers would share the forked SQLAlchemy pool.
    """
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        [_bin("gunicorn"), "-w", str(workers), "-k", "gthread", "--threads", "4", "--timeout", "120",
         "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "superset.app:create_app()"],
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
