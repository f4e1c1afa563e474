"""Fixtures for sign-in tests: real OpenID Connect servers on loopback and a portal that trusts them.

``idp`` is the development identity provider (oidc-provider-mock with the
portal's own wrapper, ``demo/dev_idp.py``) running in a thread; ``sso_app``
is a portal whose operator sign-in goes to it; ``sso_tenants`` gives Marburg
(a) and Fulda (b) their e-mail domains and point both at ``idp``.
``login`` runs the whole authorization-code flow with the Flask test client
on the portal side and plain HTTP against the real provider.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from demo.dev_idp import DEMO_ROLE_MAPPING, OPERATOR_EMAIL, OPERATOR_ROLE_VALUE, build_app, person

PEOPLE = [
    person("viewer@marburg.de", ["egovsad-viewer"]),
    person("editor@marburg.de", ["egovsad-editor"]),
    person("admin@marburg.de", ["egovsad-admin"]),
    person("norole@marburg.de"),
    person("admin@fulda.de", ["egovsad-admin"]),
    # Known to Marburg's provider, but with an address of Fulda's domain.
    person("intruder@fulda.de", ["egovsad-admin"]),
    person(OPERATOR_EMAIL, [OPERATOR_ROLE_VALUE], "Operator"),
    person("staff@egovsad.example", ["egovsad-viewer"]),
]


@pytest.fixture(scope="session")
def serve():
    """Start WSGI apps on free loopback ports for the session; returns the base URL."""
    servers = []

    def start(wsgi_app) -> str:
        server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def _provider(url: str) -> SimpleNamespace:
    return SimpleNamespace(url=url, issuer=url, discovery=f"{url}/.well-known/openid-configuration")


@pytest.fixture(scope="session")
def idp(serve):
    return _provider(serve(build_app(PEOPLE)))


@pytest.fixture(scope="session")
def other_idp(serve):
    """A second, unrelated provider (another issuer)."""
    return _provider(serve(build_app(PEOPLE)))


@pytest.fixture(scope="session")
def expired_idp(serve):
    """A provider whose tokens expired an hour before they were issued."""
    return _provider(serve(build_app(PEOPLE, token_max_age=timedelta(hours=-1))))


@pytest.fixture(scope="session")
def sso_settings(database, idp):
    return dataclasses.replace(
        database, operator_oidc_discovery_url=idp.discovery, operator_oidc_client_id="egovsad-operators",
        operator_oidc_client_secret="operator-secret", login_rate_limit="1000/minute",
    )


@pytest.fixture(scope="session")
def sso_app(sso_settings, redis_conn):
    """CSRF is off for the test client's posts; the browser tests and test_csrf.py run with it on."""
    from portal import create_app

    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, settings=sso_settings)


@pytest.fixture
def sso_client(sso_app, clean_db):
    return sso_app.test_client()


def configure_provider(app, tenant_id: int, provider, domains: list[str], **overrides) -> None:
    """Store a tenant's domains and identity provider as the admin form would (with the connection test)."""
    from tenants.context import platform_transaction
    from tenants.identity import ProviderSettings, save_identity_provider, set_domains

    wanted = ProviderSettings(discovery_url=provider.discovery, client_id=f"client-{tenant_id}",
                              client_secret=f"secret-{tenant_id}", role_claim="roles",
                              role_mapping=DEMO_ROLE_MAPPING)
    wanted = dataclasses.replace(wanted, **overrides)
    with app.app_context(), platform_transaction():
        set_domains(tenant_id, domains)
        save_identity_provider(tenant_id, wanted, app.config["EGOV"])


@pytest.fixture
def sso_tenants(sso_app, two_tenants, idp):
    configure_provider(sso_app, two_tenants.a.id, idp, ["marburg.de"])
    configure_provider(sso_app, two_tenants.b.id, idp, ["fulda.de"])
    return two_tenants


def start_login(client, path: str) -> str:
    """GET the portal's login URL; returns the provider's authorization URL it redirects to."""
    response = client.get(path)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def authorize(authorization_url: str, subject: str) -> str:
    """Sign in at the real provider as ``subject``; returns the portal callback (path and query)."""
    response = requests.post(authorization_url, data={"sub": subject}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["Location"])
    return f"{location.path}?{location.query}"


def login(client, path: str, subject: str):
    """The whole flow; returns the portal's answer to the callback."""
    return client.get(authorize(start_login(client, path), subject))


@pytest.fixture(autouse=True)
def _without_superset_steps(monkeypatch):
    """Lifecycle tests run the provisioning job without the Superset steps.

    Those talk to a real Superset and are tested with one in tests/superset/; here the job's
    bookkeeping, approval, suspension and offboarding are what is under test.
    """
    from tenants import provisioning

    monkeypatch.setattr(provisioning, "_STEPS",
                        {name: step for name, step in provisioning._STEPS.items() if not name.startswith("superset_")})


@pytest.fixture
def shaped_idp(serve):
    """Start a provider shaped like a real one (tests/auth/oidc_server.py); returns its description.

    ``shaped_idp(people, kid=False, scope_claims={"groups": ["groups"]}, ...)``; ``.server`` is the
    :class:`OidcServer` (rotate its key, read what it was asked).
    """
    from tests.auth.oidc_server import OidcServer

    def start(people: dict, **options) -> SimpleNamespace:
        server = OidcServer(people, **options)
        provider = _provider(serve(server.wsgi()))
        provider.server = server
        return provider

    return start


def configure_shaped(app, tenant_id: int, provider, domains: list[str], **overrides) -> None:
    """Like :func:`configure_provider`, with the client registered at a shaped provider."""
    from tests.auth.oidc_server import CLIENT_ID, CLIENT_SECRET

    configure_provider(app, tenant_id, provider, domains,
                       **{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **overrides})
