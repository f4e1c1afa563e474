"""Sign-up, review, suspension, offboarding with archive and purge, key rotation."""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tenants.context import apply_tenant, platform_transaction, tenant_transaction
from tests.auth.conftest import login
from tests.conftest import FULDA, MARBURG, add_operator, sign_in
from tests.test_isolation_matrix import CATALOGUE, _insert, _ordered, _sample_row

BAD_HOMBURG = "06434001"


@pytest.fixture(autouse=True)
def _archives_of_this_test(sso_app, tmp_path, monkeypatch):
    """Offboarding archives under the test's own directory (tenant ids start at 1 in every test)."""
    monkeypatch.setitem(sso_app.config, "EGOV", dataclasses.replace(sso_app.config["EGOV"],
                                                                   archive_dir=str(tmp_path / "archives")))


def _work(app) -> None:
    """The queued jobs (offboarding's archive and purge), on a real worker, until the queue is empty.

    Without the worker's start-up settling: the fixture's made-up ingest runs would be loaded."""
    from ingest_workers.worker import run_worker

    run_worker(app, ["default"], burst=True, with_scheduler=False, settle=False)


def _operator(app) -> str:
    return add_operator(app, "op@egovsad.example")


def _signup_form(idp, **overrides):
    form = {"contact_name": "Erika Muster", "contact_email": "erika@bad-homburg.de", "domains": "bad-homburg.de",
            "discovery_url": idp.discovery, "client_id": "egovsad", "client_secret": "s3cret", "role_claim": "roles",
            "role_mapping": "egovsad-admin = admin\negovsad-viewer = viewer", "default_role": "", "action": "submit"}
    form.update(overrides)
    return form


def _tenant(app, ags):
    from tenants.registry import get_tenant_by_ags

    with app.app_context(), platform_transaction():
        tenant = get_tenant_by_ags(ags)
        return dataclasses.make_dataclass("T", ["id", "status", "status_reason"])(
            tenant.id, tenant.status, tenant.status_reason)


def test_search_by_name_ags_and_postcode(sso_client):
    for query in ("Homburg", BAD_HOMBURG, "61343"):
        body = sso_client.get("/signup/", query_string={"q": query}).get_data(as_text=True)
        assert "Bad Homburg" in body, query


def test_sign_up_review_and_first_sign_in(sso_app, sso_client, clean_db, idp, redis_conn):
    from rq import Queue

    # "Verbindung testen" before anything is stored.
    tested = sso_client.post(f"/signup/{BAD_HOMBURG}", data=_signup_form(idp, action="test"))
    assert tested.status_code == 200 and idp.issuer in tested.get_data(as_text=True)
    broken = sso_client.post(f"/signup/{BAD_HOMBURG}", data=_signup_form(idp, discovery_url=idp.url + "/nope"))
    assert 'id="signup-error"' in broken.get_data(as_text=True)

    done = sso_client.post(f"/signup/{BAD_HOMBURG}", data=_signup_form(idp))
    assert done.status_code == 200 and 'id="signup-done"' in done.get_data(as_text=True)
    tenant = _tenant(sso_app, BAD_HOMBURG)
    assert tenant.status == "pending"
    again = sso_client.post(f"/signup/{BAD_HOMBURG}", data=_signup_form(idp))
    assert "bereits" in again.get_data(as_text=True)  # create_tenant's message: already registered

    # A pending tenant cannot sign in.
    assert sso_client.get(f"/t/{BAD_HOMBURG}/login").status_code == 403

    operator = sso_app.test_client()
    sign_in(operator, _operator(sso_app))
    assert "Bad Homburg" in operator.get("/operator/").get_data(as_text=True)
    operator.post(f"/operator/tenants/{BAD_HOMBURG}/status", data={"action": "approve"})
    assert _tenant(sso_app, BAD_HOMBURG).status == "active"
    queued = Queue("high", connection=redis_conn).jobs
    assert [(job.func_name, job.args) for job in queued] == [("tenants.provisioning.provision_tenant", (tenant.id,))]

    # The contact person signs in first (no role claim) and becomes admin.
    response = login(sso_client, f"/t/{BAD_HOMBURG}/login", "erika@bad-homburg.de")
    assert response.status_code == 302
    assert sso_client.get(f"/t/{BAD_HOMBURG}/admin/users").status_code == 200


def test_reject_needs_a_reason(sso_app, sso_client, clean_db, idp):
    sso_client.post(f"/signup/{BAD_HOMBURG}", data=_signup_form(idp))
    operator = sso_app.test_client()
    sign_in(operator, _operator(sso_app))
    operator.post(f"/operator/tenants/{BAD_HOMBURG}/status", data={"action": "reject", "reason": ""})
    assert _tenant(sso_app, BAD_HOMBURG).status == "pending"
    operator.post(f"/operator/tenants/{BAD_HOMBURG}/status", data={"action": "reject", "reason": "Kein Bedarf"})
    tenant = _tenant(sso_app, BAD_HOMBURG)
    assert (tenant.status, tenant.status_reason) == ("rejected", "Kein Bedarf")
    # The rejection releases the domain and lets the municipality sign up again.
    again = sso_client.post(f"/signup/{BAD_HOMBURG}", data=_signup_form(idp, contact_email="it@bad-homburg.de"))
    assert 'id="signup-done"' in again.get_data(as_text=True)
    assert _tenant(sso_app, BAD_HOMBURG).status == "pending"


def test_provisioning_progress_and_errors_are_shown(sso_app, sso_tenants, redis_conn):
    from ingest_workers.worker import run_worker
    from tenants.provisioning import _STEPS, register_step

    def broken(tenant_id):
        raise RuntimeError("Superset antwortet nicht")

    register_step("zz-test-broken", broken, order=999)
    operator = sso_app.test_client()
    sign_in(operator, _operator(sso_app))
    try:
        operator.post(f"/operator/tenants/{MARBURG}/provision")
        run_worker(sso_app, ["high"], burst=True, with_scheduler=False)
    finally:
        _STEPS.pop("zz-test-broken")
    page = operator.get(f"/operator/tenants/{MARBURG}").get_data(as_text=True)
    assert "zz-test-broken: fehlgeschlagen" in page and "Superset antwortet nicht" in page
    assert "Einrichtung fehlgeschlagen am" in page


def test_suspended_tenant_cannot_sign_in_and_keeps_its_data(sso_app, sso_client, sso_tenants):
    a = sso_tenants.a
    login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de")
    assert sso_client.get(f"/t/{a.ags}/").status_code == 200
    operator = sso_app.test_client()
    sign_in(operator, _operator(sso_app))
    operator.post(f"/operator/tenants/{a.ags}/status", data={"action": "suspend", "reason": "Rechnung offen"})

    from tenants.registry import get_tenant_by_ags, is_ingest_allowed

    with sso_app.app_context(), platform_transaction():
        assert not is_ingest_allowed(get_tenant_by_ags(a.ags))
    # The open session ends, and nobody signs in; both are told that only the operator can help.
    for response in (sso_client.get(f"/t/{a.ags}/"), sso_client.get(f"/t/{a.ags}/login")):
        page = response.get_data(as_text=True)
        assert response.status_code == 403 and 'id="not-active"' in page and "Betrieb der Plattform" in page
    # The data is still there.
    with sso_app.app_context(), tenant_transaction(a.id) as session:
        assert session.execute(text("SELECT count(*) FROM portal.users")).scalar() == 1
        assert session.execute(text("SELECT count(*) FROM portal.identity_providers")).scalar() == 1
    operator.post(f"/operator/tenants/{a.ags}/status", data={"action": "reactivate"})
    assert login(sso_client, f"/t/{a.ags}/login", "admin@marburg.de").status_code == 302


@pytest.fixture
def tenant_tables(owner_engine):
    with owner_engine.connect() as conn:
        return [r.name for r in conn.execute(CATALOGUE)
                if not r.relispartition and (r.name.startswith("analytics.") or r.has_tenant_id)]


@pytest.fixture
def full_tenants(app_engine, two_tenants, tenant_tables):
    """Two rows per tenant in every tenant table (control-plane tenant_domains included)."""
    with app_engine.connect() as conn:
        order = _ordered(conn, tenant_tables)
    seeded: dict = {}
    for tenant in (two_tenants.a, two_tenants.b):
        with app_engine.begin() as conn:
            conn.execute(text("SELECT analytics.ensure_event_partition(DATE '2026-01-01')"))
            apply_tenant(conn, tenant.id)
            for table in order:
                row = _sample_row(conn, table, tenant.id, seeded)
                if table == "portal.tenant_domains":
                    row["domain"] = f"t{tenant.id}.example.de"
                seeded[(table, tenant.id)] = _insert(conn, table, row)
                if table not in ("portal.identity_providers", "portal.tenant_domains"):  # one row per tenant
                    _insert_second(conn, table, _second(conn, table, tenant.id, seeded))
    return two_tenants


def _insert_second(conn, table, row):
    """A second row where the key variations below make one; tables keyed otherwise keep one row."""
    savepoint = conn.begin_nested()
    try:
        _insert(conn, table, row)
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()


def _second(conn, table, tenant_id, seeded):
    row = _sample_row(conn, table, tenant_id, seeded)
    # Vary every text key column so a second row does not collide with the first.
    for key, value in list(row.items()):
        if key in ("subject", "name", "batch_key", "key", "page_url", "step_name", "payment_method", "auth_method"):
            row[key] = f"{value}-2"
        elif key == "service_key":
            row[key] = "99102013104001"
        elif key == "day":
            row[key] = value.replace(day=16)
    if table == "analytics.rollup_step_daily":
        row["step_no"] = 2
    return row


def _counts(app_engine, tenant_id, tables):
    # Table names come from pg_catalog (CATALOGUE quotes them with %I), never from input.
    with app_engine.begin() as conn:
        apply_tenant(conn, tenant_id)
        return {t: conn.execute(text(f"SELECT count(*) FROM {t} WHERE tenant_id = :t"),  # noqa: S608
                                {"t": tenant_id}).scalar() for t in tables}


def test_offboarding_archive_holds_every_row_and_purge_removes_only_that_tenant(
        sso_app, app_engine, full_tenants, tenant_tables):
    a, b = full_tenants.a, full_tenants.b
    before_a, before_b = _counts(app_engine, a.id, tenant_tables), _counts(app_engine, b.id, tenant_tables)
    assert all(before_a.values()) and all(before_b.values())

    operator = sso_app.test_client()
    sign_in(operator, _operator(sso_app))
    assert operator.get(f"/operator/tenants/{MARBURG}/archive.zip").status_code == 409  # still active
    operator.post(f"/operator/tenants/{MARBURG}/status", data={"action": "offboard", "reason": "Vertrag beendet"})
    before_a = _counts(app_engine, a.id, tenant_tables)  # the audit log gained the offboarding
    # The offboarding queued the archive job; the page says so until a worker has written it.
    assert operator.get(f"/operator/tenants/{MARBURG}/archive.zip").status_code == 409
    assert 'id="archive-progress"' in operator.get(f"/operator/tenants/{MARBURG}").get_data(as_text=True)
    _work(sso_app)
    response = operator.get(f"/operator/tenants/{MARBURG}/archive.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"

    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(archive.namelist()) == sorted([f"{t}.csv" for t in tenant_tables] + ["manifest.json"])
    for table in tenant_tables:
        rows = list(csv.DictReader(io.TextIOWrapper(archive.open(f"{table}.csv"), encoding="utf-8")))
        assert len(rows) == before_a[table], table
        assert {row["tenant_id"] for row in rows} == {str(a.id)}, table

    # The second confirmation must name the AGS.
    before_a = _counts(app_engine, a.id, tenant_tables)  # the download is in the audit log as well
    operator.post(f"/operator/tenants/{MARBURG}/purge", data={"confirmation": FULDA})
    _work(sso_app)
    assert _counts(app_engine, a.id, tenant_tables) == before_a
    operator.post(f"/operator/tenants/{MARBURG}/purge", data={"confirmation": MARBURG})
    _work(sso_app)
    assert set(_counts(app_engine, a.id, tenant_tables).values()) == {0}
    assert _counts(app_engine, b.id, tenant_tables) == before_b
    page = operator.get(f"/operator/tenants/{MARBURG}").get_data(as_text=True)
    assert 'id="remaining-rows"' in page and ">0 " in page.split('id="remaining-rows"')[1][:10]


def test_purge_is_refused_unless_offboarded(sso_app, app_engine, full_tenants, tenant_tables):
    before = _counts(app_engine, full_tenants.a.id, tenant_tables)
    operator = sso_app.test_client()
    sign_in(operator, _operator(sso_app))
    operator.post(f"/operator/tenants/{MARBURG}/purge", data={"confirmation": MARBURG})
    _work(sso_app)
    assert _counts(app_engine, full_tenants.a.id, tenant_tables) == before


def test_offboarding_jobs_show_progress_and_a_failed_purge_can_be_started_again(
        sso_app, app_engine, full_tenants, tenant_tables, monkeypatch):
    from tenants import offboarding

    a, b = full_tenants.a, full_tenants.b
    before_b = _counts(app_engine, b.id, tenant_tables)
    operator = sso_app.test_client()
    sign_in(operator, _operator(sso_app))
    page_url, status_url = f"/operator/tenants/{MARBURG}", f"/operator/tenants/{MARBURG}/offboarding"
    answer = operator.post(f"{page_url}/status", data={"action": "offboard", "reason": "Vertrag beendet"})
    assert answer.status_code == 302  # at once: the archive is a job
    state = operator.get(status_url).get_json()
    assert state["busy"] and state["jobs"]["archive"]["status"] == "queued" and state["archive"] is None
    page = operator.get(page_url).get_data(as_text=True)
    assert "Archiv wird geschrieben" in page and "wartet auf einen Worker" in page and 'data-busy="yes"' in page

    _work(sso_app)
    state = operator.get(status_url).get_json()
    tables = len(tenant_tables)
    assert not state["busy"] and state["jobs"]["archive"]["progress"] == {"phase": "archive", "done": tables,
                                                                          "total": tables}
    rows_before = _counts(app_engine, a.id, tenant_tables)
    assert state["archive"]["rows"] == sum(rows_before.values()) - 1  # the archive's own audit entry came after
    assert "Archiv herunterladen" in operator.get(page_url).get_data(as_text=True)

    # A purge that fails half-way (here: at its last statement) deletes no data (provisioning was undone
    # first, in its own transactions, and recorded its progress in the tenant's settings); the page says so.
    monkeypatch.setattr(offboarding, "RETRIES", 0)
    real_record = offboarding.audit.record

    def fail_at_the_end(action, **kwargs):
        if action == "tenant.purged":
            raise RuntimeError("Verbindung verloren")
        return real_record(action, **kwargs)

    monkeypatch.setattr(offboarding.audit, "record", fail_at_the_end)
    operator.post(f"{page_url}/purge", data={"confirmation": MARBURG})
    assert _counts(app_engine, a.id, tenant_tables) == rows_before  # the request only queued it
    assert "Daten werden gelöscht" in operator.get(page_url).get_data(as_text=True)
    _work(sso_app)
    after_failure = _counts(app_engine, a.id, tenant_tables)
    assert {t: n for t, n in after_failure.items() if t != "portal.tenant_settings"} == \
        {t: n for t, n in rows_before.items() if t != "portal.tenant_settings"}
    page = operator.get(page_url).get_data(as_text=True)
    assert 'id="purge-failed"' in page and "Verbindung verloren" in page

    # Started again, it runs through; a third time finds nothing left and changes nothing else.
    monkeypatch.setattr(offboarding.audit, "record", real_record)
    for _ in range(2):
        operator.post(f"{page_url}/purge", data={"confirmation": MARBURG})
        _work(sso_app)
        assert set(_counts(app_engine, a.id, tenant_tables).values()) == {0}
    assert _counts(app_engine, b.id, tenant_tables) == before_b
    assert not offboarding_archive(sso_app, a.id).exists()  # the purge removed the archive too
    page = operator.get(page_url).get_data(as_text=True)
    assert 'id="purge-done"' in page and ">0 Datensätze sind noch gespeichert" in page
    with sso_app.app_context(), platform_transaction() as session:
        purged = session.execute(text("SELECT details->>'rows' FROM portal.platform_audit_log "
                                      "WHERE action = 'tenant.purged' ORDER BY id")).scalars().all()
    # (the second found only what undoing provisioning again had recorded)
    assert len(purged) == 2 and int(purged[0]) > int(purged[1])


def offboarding_archive(app, tenant_id):
    from tenants.offboarding import archive_path

    with app.app_context():
        return archive_path(tenant_id, MARBURG)


def test_key_rotation_re_encrypts_every_stored_secret(sso_app, sso_tenants, app_engine, sso_client):
    from cryptography.fernet import Fernet

    from tenants.crypto import SecretError, decrypt
    from tenants.models import DataSource, IdentityProvider
    from tenants.rotation import rotate_stored_secrets

    old = sso_app.config["EGOV"]
    with sso_app.app_context(), tenant_transaction(sso_tenants.b.id) as session:
        from tenants.crypto import encrypt

        session.add(DataSource(tenant_id=sso_tenants.b.id, name="Matomo", kind="matomo",
                               secret_encrypted=encrypt(old, "matomo-token")))
    new_key = Fernet.generate_key().decode()
    rotating = dataclasses.replace(old, encryption_keys=(new_key, *old.encryption_keys))
    only_new = dataclasses.replace(old, encryption_keys=(new_key,))
    with sso_app.app_context():
        # two client secrets, their two saved versions (portal.identity_provider_versions), one data-source token
        assert rotate_stored_secrets(rotating) == 5

    def secrets(settings):
        values = []
        for tenant_id in (sso_tenants.a.id, sso_tenants.b.id):
            with sso_app.app_context(), tenant_transaction(tenant_id) as session:
                values += [decrypt(settings, p.client_secret_encrypted) for p in session.query(IdentityProvider)]
                values += [decrypt(settings, d.secret_encrypted) for d in session.query(DataSource)]
        return values

    assert sorted(secrets(only_new)) == sorted([f"secret-{sso_tenants.a.id}", f"secret-{sso_tenants.b.id}",
                                                "matomo-token"])
    with pytest.raises(SecretError):
        secrets(dataclasses.replace(old, encryption_keys=old.encryption_keys))
