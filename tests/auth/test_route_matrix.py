"""The route matrix: every route of the app's url_map, every kind of principal.

Built from ``app.url_map``, so a route added later is covered at once:

* every route under ``/t/<ags>/`` must declare who may use it (``role_required``,
  ``operator_required`` or ``public`` from ``portal/access.py``);
* for each declared route and each method: anonymous people are sent to sign in,
  viewers, editors and admins get in exactly when their role suffices, operators
  only on operator routes (403 otherwise);
* staff of tenant A asking for tenant B's URL get 404, and so do they when the
  URL names their own tenant but an object of B (each object parameter needs a
  factory in ``OBJECTS``, a vocabulary parameter a value in ``VALUES``; an unknown
  parameter fails the test).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tenants.context import tenant_transaction
from tenants.models import ROLE_RANK
from tests.conftest import add_operator, sign_in

MISSING = object()
PRINCIPALS = ("anonymous", "viewer", "editor", "admin", "operator")


def _user(session, tenant_id: int, email: str, role: str) -> int:
    from tenants.models import User

    user = User(tenant_id=tenant_id, subject=email, email=email, role=role)
    session.add(user)
    session.flush()
    return user.id


#: URL parameter -> the object of a tenant it names (a function of the tenant's seeded ids).
OBJECTS = {
    "user_id": lambda ids: ids["viewer"],
    # issue 4 (ingest): a push data source, one of its runs, the public key of a feedback source
    "source_id": lambda ids: ids["source_id"],
    "run_id": lambda ids: ids["run_id"],
    "public_key": lambda ids: ids["public_key"],
    # issue 6 (benchmarks): a service in the tenant's catalogue (A and B offer different ones)
    "leika": lambda ids: ids["leika"],
}

#: URL parameters that name no tenant's object but a fixed vocabulary (the same for every tenant).
#: ``any(...)`` converters need no entry: their first value is taken.
VALUES = {
    # issue 7 (Open Data): a dataset key of tenants/opendata/datasets.py
    "dataset": lambda: next(iter(__import__("tenants.opendata.datasets", fromlist=["DATASETS"]).DATASETS)),
    # issue 5 (Superset): a ready-made dashboard's key (superset_config/dashboards); `world` records
    # it as provisioned for both tenants.
    "key": lambda: "overview",
    # issue 15 (file templates): a shipped mapping profile (tenants/ingest/profiles)
    "profile": lambda: "civento",
}


@pytest.fixture(scope="module", params=["rls", "without-rls"])
def matrix_app(request, database, redis_conn):
    """The portal twice: on the application role (both layers), then on a connection that bypasses
    row-level security (``rls_bypass_settings``), where only the application's own tenant checks
    (fetch helpers that answer "not found" for foreign objects) keep tenants apart. Each isolation
    layer is so proven on its own; the database layer alone is tests/test_isolation_matrix.py.
    """
    import dataclasses

    from portal import create_app

    settings = database if request.param == "rls" else request.getfixturevalue("rls_bypass_settings")
    # Not RATELIMIT_ENABLED=False: Flask-Limiter's one limiter object would keep that for apps created later.
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False},
                     settings=dataclasses.replace(settings, login_rate_limit="10000/minute",
                                                  signup_rate_limit="10000/minute"))
    app.config["MATRIX_LAYERS"] = request.param
    yield app
    from tenants.db import db

    with app.app_context():
        db.engine.dispose()


def test_the_second_run_really_bypasses_row_security(matrix_app, world):
    """Guards against a vacuous second run: without RLS, a query with tenant A set sees B's rows too."""
    from sqlalchemy import text

    with matrix_app.app_context(), tenant_transaction(world.a.id) as session:
        seen = set(session.execute(text("SELECT DISTINCT tenant_id FROM portal.data_sources")).scalars())
        bypass = session.execute(text("SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user")).scalar()
    if matrix_app.config["MATRIX_LAYERS"] == "rls":
        assert (bypass, seen) == (False, {world.a.id})
    else:
        assert (bypass, seen) == (True, {world.a.id, world.b.id})


@pytest.fixture
def world(matrix_app, two_tenants):

    ids = {}
    with matrix_app.app_context():
        for key, tenant, domain in (("a", two_tenants.a, "marburg.de"), ("b", two_tenants.b, "fulda.de")):
            with tenant_transaction(tenant.id) as session:
                ids[key] = {role: _user(session, tenant.id, f"{role}@{domain}", role) for role in ROLE_RANK}
                ids[key].update(_ingest_objects(session, tenant.id, matrix_app.config["EGOV"]))
                ids[key]["leika"] = _service(session, tenant.id, {"a": "99102013104000", "b": "99050012104000"}[key])
        for tenant in (two_tenants.a, two_tenants.b):
            _record_provisioned_dashboard(tenant.id)
    identities = {role: f"u:{two_tenants.a.id}:{ids['a'][role]}" for role in ROLE_RANK}
    identities["operator"] = add_operator(matrix_app, "op@egovsad.example")
    return SimpleNamespace(a=two_tenants.a, b=two_tenants.b, ids=ids, identities=identities)


def _ingest_objects(session, tenant_id: int, settings) -> dict:
    from tenants.ingest.sources import create_source
    from tenants.models import IngestRun

    # Names of their own per tenant: the name check relies on RLS (see test_source_names_are_per_tenant...).
    push = create_source(session, tenant_id, settings, f"Fachverfahren {tenant_id}", "push")
    feedback = create_source(session, tenant_id, settings, f"Zufriedenheit {tenant_id}", "feedback",
                             origins="https://www.example.de")
    run = IngestRun(tenant_id=tenant_id, data_source_id=push.id, batch_key="matrix", status="failed", error="test")
    session.add(run)
    session.flush()
    return {"source_id": push.id, "run_id": run.id, "public_key": feedback.config["public_key"]}


def _service(session, tenant_id: int, leika: str) -> str:
    from sqlalchemy import text

    session.execute(text("INSERT INTO analytics.services (tenant_id, service_key, leika_key, name) "
                         "VALUES (:t, :k, :l, 'Dienst')"), {"t": tenant_id, "k": leika, "l": leika})
    return leika


def _record_provisioned_dashboard(tenant_id: int) -> None:
    """What Superset provisioning records, so the dashboard routes have an object to show."""
    import uuid

    from tenants.superset.provision import _save_state

    _save_state(tenant_id, {"dashboards": {VALUES["key"](): {"embedded_uuid": str(uuid.uuid4())}}})


#: Blueprints whose every route needs one role, whatever the view declares.
BLUEPRINT_ROLES = {"tenant_admin": "admin", "operator": "operator"}


def _call(app, identity: str | None, method: str, url: str):
    client = app.test_client()
    if identity:
        sign_in(client, identity)
    return client.open(url, method=method, data={})


def _allowed(required: str, who: str) -> bool:
    if who == "operator":
        return required == "operator"
    return required != "operator" and ROLE_RANK[who] >= ROLE_RANK[required]


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        yield rule, getattr(view, "required_role", MISSING), sorted(rule.methods - {"HEAD", "OPTIONS"})


def _object_args(rule) -> set[str]:
    return {arg for arg in rule.arguments if arg in OBJECTS}


def _url(rule, ags: str, objects: dict) -> str | None:
    values = {"ags": ags}
    for arg in rule.arguments - {"ags"} - set(rule.defaults or ()):
        converter = rule._converters.get(arg)
        if arg in OBJECTS:
            values[arg] = OBJECTS[arg](objects)
        elif arg in VALUES:
            values[arg] = VALUES[arg]()
        elif getattr(converter, "items", None):
            values[arg] = sorted(converter.items)[0]
        else:
            return None
    return rule.build(values, append_unknown=False)[1]


def _check_permissions(app, world, rule, required, method, failures) -> None:
    url = _url(rule, world.a.ags, world.ids["a"])
    for who in PRINCIPALS:
        response = _call(app, world.identities.get(who), method, url)
        status, location = response.status_code, response.headers.get("Location", "")
        if who == "anonymous":
            ok = status == 302 and "login" in location
        elif _allowed(required, who):
            # A redirect elsewhere (Superset's sign-in through the portal) is fine; to our own sign-in is not.
            to_our_sign_in = location.startswith("/") and "login" in location
            ok = status not in (401, 403, 404) and status < 500 and not to_our_sign_in
        else:
            ok = status == 403
        if not ok:
            failures.append(f"{method} {url} as {who} (needs {required}): {status} {location}")


def _check_isolation(app, world, rule, method, failures) -> None:
    admin = world.identities["admin"]
    foreign = _url(rule, world.b.ags, world.ids["b"])
    status = _call(app, admin, method, foreign).status_code
    if status != 404:
        failures.append(f"{method} {foreign} (tenant B) as admin of A: {status}, expected 404")
    if _object_args(rule):
        mixed = _url(rule, world.a.ags, world.ids["b"])
        status = _call(app, admin, method, mixed).status_code
        if status != 404:
            failures.append(f"{method} {mixed} (A's URL, B's object) as admin of A: {status}, expected 404")


def test_every_route_keeps_roles_and_tenants_apart(matrix_app, world):
    failures: list[str] = []
    checked = set()
    for rule, required, methods in _routes(matrix_app):
        is_tenant = "ags" in rule.arguments
        if is_tenant and required is MISSING:
            failures.append(f"{rule.rule} ({rule.endpoint}) declares no role: use role_required, "
                            "operator_required or public")
            continue
        policy = BLUEPRINT_ROLES.get(rule.endpoint.partition(".")[0])
        if policy is not None and required != policy:
            failures.append(f"{rule.rule} ({rule.endpoint}) declares {required!r}, its blueprint needs {policy!r}")
            continue
        if (is_tenant or required not in (MISSING, None)) and _url(rule, world.a.ags, world.ids["a"]) is None:
            failures.append(f"{rule.rule}: add a factory for its parameters to OBJECTS")
            continue
        for method in methods if (is_tenant or required not in (MISSING, None)) else ():
            if required not in (MISSING, None):
                _check_permissions(matrix_app, world, rule, required, method, failures)
                checked.add(rule.endpoint)
            if is_tenant and required != "operator":
                _check_isolation(matrix_app, world, rule, method, failures)
    assert failures == []
    # Guards against a vacuous matrix: the tenant admin and operator pages were exercised.
    assert {"tenant_home.index", "tenant_admin.users", "tenant_admin.update_user", "tenant_admin.identity_provider",
            "operator.tenant", "operator.change", "operator.purge", "operator.download_archive",
            "tenant_ingest.run_page", "tenant_ingest.source_page", "tenant_ingest.retry",
            "tenant_dashboards.show", "tenant_dashboards.guest_token", "tenant_opendata.preview_dataset",
            "tenant_benchmark.service"} <= checked


def test_forms_need_the_csrf_token(app, two_tenants):
    client = app.test_client()
    assert client.post("/login", data={"email": "viewer@marburg.de"}).status_code == 400
    assert client.post("/signup/06434001", data={"contact_name": "x"}).status_code == 400


def test_security_headers_and_cookie_flags(app, two_tenants):
    response = app.test_client().get("/login?lang=en")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "form-action 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_in_and_sign_up_are_rate_limited(database, redis_conn, two_tenants):
    import dataclasses

    from portal import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False},
                     settings=dataclasses.replace(database, login_rate_limit="3/minute", signup_rate_limit="2/hour"))
    client = app.test_client()
    assert [client.post("/login", data={"email": "a@b.de"}).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [client.post("/signup/06434001", data={}).status_code for _ in range(3)][-1] == 429
