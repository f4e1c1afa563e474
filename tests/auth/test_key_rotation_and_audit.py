"""Signing-key rotation at the provider, and the audit of refused sign-ins, against real providers on loopback."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tenants.context import tenant_transaction
from tests.auth.conftest import configure_shaped, login

PEOPLE = {"u-erika": {"email": "erika@marburg.de", "email_verified": True, "roles": ["egovsad-admin"]},
          "u-intruder": {"email": "intruder@fulda.de", "email_verified": True, "roles": ["egovsad-admin"]},
          "u-norole": {"email": "norole@marburg.de", "email_verified": True}}


def _refused_entries(app, tenant_id):
    with app.app_context(), tenant_transaction(tenant_id) as session:
        return list(session.execute(text("SELECT actor, details FROM portal.audit_log "
                                         "WHERE action = 'login.refused' ORDER BY id")))


@pytest.mark.parametrize("kid", [True, False], ids=["with-kid", "without-kid"])
def test_sign_in_works_right_after_the_provider_rotates_its_key(sso_app, sso_client, two_tenants, shaped_idp, kid):
    idp = shaped_idp(PEOPLE, kid=kid)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"])
    assert login(sso_client, f"/t/{a.ags}/login", "u-erika").status_code == 302
    reads = idp.server.jwks_reads
    idp.server.rotate_key()
    assert login(sso_client, f"/t/{a.ags}/login", "u-erika").status_code == 302
    assert idp.server.jwks_reads == reads + 1  # read again once, not on every sign-in
    assert login(sso_client, f"/t/{a.ags}/login", "u-erika").status_code == 302
    assert idp.server.jwks_reads == reads + 1


@pytest.mark.parametrize("kid", [True, False], ids=["with-kid", "without-kid"])
def test_a_token_no_published_key_verifies_is_still_refused(sso_app, sso_client, two_tenants, shaped_idp, kid):
    idp = shaped_idp(PEOPLE, kid=kid)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"])
    assert login(sso_client, f"/t/{a.ags}/login", "u-erika").status_code == 302
    idp.server.sign_with_unpublished_key()
    response = login(sso_client, f"/t/{a.ags}/login", "u-erika")
    assert response.status_code == 403
    entry = _refused_entries(sso_app, a.id)[-1]
    assert entry.details["attempted"] == "erika@marburg.de" and entry.details["subject"] == "u-erika"
    assert entry.details["verified"] is False  # read from a token that was refused


def test_refused_sign_ins_record_who_tried(sso_app, sso_client, two_tenants, shaped_idp):
    idp = shaped_idp(PEOPLE)
    a = two_tenants.a
    configure_shaped(sso_app, a.id, idp, ["marburg.de"])
    assert login(sso_client, f"/t/{a.ags}/login", "u-intruder").status_code == 403
    assert login(sso_client, f"/t/{a.ags}/login", "u-norole").status_code == 403
    first, second = _refused_entries(sso_app, a.id)
    assert "intruder@fulda.de" in first.actor and first.details["attempted"] == "intruder@fulda.de"
    assert first.details["verified"] is True and first.details["subject"] == "u-intruder"
    assert "norole@marburg.de" in second.actor and second.actor != "anonymous"
    # The admin sees them in the tenant's log page.
    with sso_app.app_context(), tenant_transaction(a.id) as session:
        session.execute(text("INSERT INTO portal.users (tenant_id, subject, email, role) "
                             "VALUES (:t, 'u-erika', 'erika@marburg.de', 'admin')"), {"t": a.id})
    assert login(sso_client, f"/t/{a.ags}/login", "u-erika").status_code == 302
    log = sso_client.get(f"/t/{a.ags}/admin/audit").get_data(as_text=True)
    assert "intruder@fulda.de" in log and "norole@marburg.de" in log
