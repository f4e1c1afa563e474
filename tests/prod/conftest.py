"""The production shape on this host: the portal and Superset behind Caddy with TLS on two sibling names.

Run by ``make prod-test`` (``EGOV_PROD_TESTS=1``), not by ``make test``: it starts a Superset of its own
(its portal origin is the HTTPS one) and takes about two minutes. What runs:

* a local CA and a certificate for ``portal.egov.test`` and ``dashboards.egov.test`` (docker/tls.sh),
* Caddy from Debian with docker/Caddyfile, listening on EGOV_TEST_PROXY_PORT (default 8443),
* the portal (werkzeug, in a thread) behind it with EGOV_PROXY_COUNT=1 and Secure cookies, Superset behind it
  with its proxy fix; portal and Superset reach each other past the proxy (EGOV_*_INTERNAL_URL),
* the development identity provider (plain HTTP on loopback, as an outside provider would be),
* Chromium with its own resolver rules (the names point to 127.0.0.1) and the local CA in its NSS database.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tenants.settings import PROJECT_ROOT
from tests.auth import conftest as auth_fixtures
from tests.auth.conftest import PEOPLE, configure_provider
from tests.superset import conftest as superset_fixtures
from tests.superset.conftest import _REDIS_BASE, PORTAL_PORT, SUPERSET_PORT

# The Superset world of tests/superset/ and the identity-provider server of tests/auth/, here with the
# settings of a deployment behind the proxy (superset_settings below).
serve = auth_fixtures.serve
superset, ss_app, ss_live_server, tenants_ab = (superset_fixtures.superset, superset_fixtures.ss_app,
                                                superset_fixtures.ss_live_server, superset_fixtures.tenants_ab)

PROXY_PORT = int(os.environ.get("EGOV_TEST_PROXY_PORT", "8443"))
PORTAL_HOST, DASHBOARDS_HOST = "portal.egov.test", "dashboards.egov.test"
PORTAL, DASHBOARDS = f"https://{PORTAL_HOST}:{PROXY_PORT}", f"https://{DASHBOARDS_HOST}:{PROXY_PORT}"
# Read by superset_config.py in the Superset this session starts: it sits behind one proxy.
os.environ["EGOV_SUPERSET_PROXY_FIX"] = "1"


@pytest.fixture(scope="session")
def superset_settings(database):
    """The settings of a deployment behind the proxy (tests/superset/conftest.py's fixtures use them)."""
    return dataclasses.replace(
        database, portal_url=PORTAL, superset_url=DASHBOARDS,
        portal_internal_url=f"http://127.0.0.1:{PORTAL_PORT}", superset_internal_url=f"http://127.0.0.1:{SUPERSET_PORT}",
        proxy_count=1, secure_cookies=True, login_rate_limit="1000/minute",
        superset_redis_url=os.environ.get("EGOV_TEST_SUPERSET_REDIS_URL", _REDIS_BASE + "/9"),
        superset_limits_url=os.environ.get("EGOV_TEST_SUPERSET_LIMITS_URL", _REDIS_BASE + "/10"),
    )


@pytest.fixture(scope="session")
def tls(database) -> Path:
    """The local CA and the certificate of both names (docker/tls.sh), under var/."""
    directory = database.var_dir / "tls-test"
    subprocess.run(["bash", str(PROJECT_ROOT / "docker" / "tls.sh"), str(directory), PORTAL_HOST, DASHBOARDS_HOST],
                   check=True)
    return directory


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"caddy exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"caddy does not listen on {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def proxy(tls, database, ss_live_server, superset):
    """Caddy with docker/Caddyfile in front of the portal and Superset."""
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.fail("Caddy is missing: `make prod-test` installs Debian's caddy package")
    state = database.var_dir / "caddy-test"
    state.mkdir(parents=True, exist_ok=True)
    log = state / "caddy.log"
    env = {**os.environ, "XDG_DATA_HOME": str(state), "XDG_CONFIG_HOME": str(state),
           "EGOV_PORTAL_HOST": PORTAL_HOST, "EGOV_DASHBOARDS_HOST": DASHBOARDS_HOST,
           "EGOV_PROXY_PORT": str(PROXY_PORT), "EGOV_TLS_CERT": str(tls / "server.pem"),
           "EGOV_TLS_KEY": str(tls / "server.key"), "EGOV_PORTAL_UPSTREAM": f"127.0.0.1:{PORTAL_PORT}",
           "EGOV_SUPERSET_UPSTREAM": f"127.0.0.1:{SUPERSET_PORT}"}
    with open(log, "ab") as out:
        process = subprocess.Popen([caddy, "run", "--config", str(PROJECT_ROOT / "docker" / "Caddyfile"),
                                    "--adapter", "caddyfile"], env=env, stdout=out, stderr=out)
    _wait_for_port(PROXY_PORT, process, log)
    yield SimpleNamespace(portal=PORTAL, dashboards=DASHBOARDS, ca=tls / "ca.pem")
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="session")
def tls_browser(tls, tmp_path_factory):
    """Chromium that resolves *.egov.test to loopback and trusts the local CA (an NSS database in its HOME)."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_FLAGS

    home = tmp_path_factory.mktemp("chromium-home")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "eGovSAD local CA", "-t", "C,,",
                    "-i", str(tls / "ca.pem")], check=True)
    executable = next(p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium")) if p and os.path.exists(p))
    rules = f"--host-resolver-rules=MAP {PORTAL_HOST} 127.0.0.1, MAP {DASHBOARDS_HOST} 127.0.0.1"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=[*CHROMIUM_FLAGS, rules],
                                     env={**os.environ, "HOME": str(home)})
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def idp_for_marburg(serve, ss_app, tenants_ab):
    """The development identity provider, configured as Marburg's (staff sign in with @marburg.de)."""
    from demo.dev_idp import build_app
    from tests.auth.conftest import _provider

    provider = _provider(serve(build_app(PEOPLE)))
    configure_provider(ss_app, tenants_ab.a.id, provider, ["marburg.de"])
    return provider
