"""Audit logs as an admin and an operator read them: German labels, readable subjects, filter, paging."""

from __future__ import annotations

from tenants import audit
from tenants.context import tenant_transaction
from tests.conftest import add_operator, client_as
from tests.ingest.conftest import sign_in


def _record(app, tenant_id, action, actor, target=None, n=1, **details):
    with app.app_context(), tenant_transaction(None):
        for _ in range(n):
            audit.record(action, actor=actor, tenant_id=tenant_id, target=target, details=details,
                         remote_addr="192.0.2.7")


def test_an_admin_reads_labels_and_addresses_not_codes(app, two_tenants):
    a, b = two_tenants.a, two_tenants.b
    _record(app, a.id, "user.role_changed", "user:1 chefin@marburg.de", "kollege@marburg.de", role="editor")
    _record(app, a.id, "login.refused", "attempt fremd@example.org", reason="Kein Zugriff")
    _record(app, b.id, "user.role_changed", "user:9 geheim@fulda.de", "x@fulda.de", role="admin")
    page = sign_in(app, a.id, "admin").get(f"/t/{a.ags}/admin/audit").get_data(as_text=True)
    table = page.split('id="audit-log"')[1].split("</table>")[0]
    assert "Rolle geändert" in table and "Anmeldung abgelehnt" in table
    assert ">chefin@marburg.de<" in table and "user:1" not in table and ">user.role_changed<" not in table
    assert "Rolle: Redaktion" in table
    assert "fremd@example.org (Anmeldeversuch)" in table
    assert "fulda" not in table


def test_the_filter_and_the_pages_of_a_tenants_log(app, two_tenants):
    a = two_tenants.a
    _record(app, a.id, "login", "user:1 a@marburg.de", n=55)
    _record(app, a.id, "identity_provider.saved", "user:1 a@marburg.de", "https://idp.marburg.de")
    admin = sign_in(app, a.id, "admin")
    first = admin.get(f"/t/{a.ags}/admin/audit").get_data(as_text=True)
    assert first.count('data-action="') == 50 and 'rel="next"' in first and 'rel="prev"' not in first
    second = admin.get(f"/t/{a.ags}/admin/audit?page=2").get_data(as_text=True)
    assert second.count('data-action="') == 6 and 'rel="prev"' in second and 'rel="next"' not in second
    only = admin.get(f"/t/{a.ags}/admin/audit?action=identity_provider.saved").get_data(as_text=True)
    assert only.count('data-action="') == 1 and "Einstellungen des Identitätsanbieters gespeichert" in only
    searched = admin.get(f"/t/{a.ags}/admin/audit?q=IDP.MARBURG").get_data(as_text=True)
    assert searched.count('data-action="') == 1
    future = admin.get(f"/t/{a.ags}/admin/audit?since=2999-01-01").get_data(as_text=True)
    assert 'data-action="' not in future and "Keine Einträge" in future


def test_the_platform_log_is_filtered_too(app, clean_db):
    _record(app, None, "login", "operator:1 op@betrieb.example")
    _record(app, None, "operator.deactivated", "cli", "alt@betrieb.example")
    client = client_as(app, add_operator(app))
    page = client.get("/operator/audit?action=operator.deactivated").get_data(as_text=True)
    assert page.count('data-action="') == 1 and "Betreiber deaktiviert" in page
    assert "Kommandozeile (Plattformbetrieb)" in page
