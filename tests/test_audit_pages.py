"""Audit logs as an admin and an operator read them: German labels, readable subjects, filter, paging."""

from __future__ import annotations

import re

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


def _recorded_codes() -> tuple[set[str], set[str], set[str]]:
    """Every action code and detail key the code base can write into an audit log, found in its source.

    Action codes: the string constants among the arguments of calls to ``audit.record`` and of the modules'
    thin wrappers (``_audit``, ``_record``); codes built at run time (``f"tenant.{action}"``,
    ``f"user.{action}d"``) are expanded from the actions they are built from. Detail keys: the keys of dict
    literals passed as ``details=`` and the keyword arguments of the wrappers that collect ``**details``.
    Targets: the string constants passed as ``target=``.
    """
    import ast
    from pathlib import Path

    from tenants.lifecycle import TRANSITIONS

    root = Path(__file__).resolve().parents[1]
    code = re.compile(r"^[a-z_]+\.[a-z_]+$|^login$|^logout$")
    wrappers = {"record", "_audit", "_record"}
    actions, keys, targets = set(), set(), set()
    for path in [p for d in ("portal", "tenants", "ingest_workers") for p in (root / d).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in wrappers or (name == "record" and getattr(node.func, "value", None) is not None
                                        and getattr(node.func.value, "id", "") != "audit"):
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and code.match(arg.value):
                    actions.add(arg.value)
                if isinstance(arg, ast.Dict):
                    keys |= {k.value for k in arg.keys if isinstance(k, ast.Constant)}
            for keyword in node.keywords:
                if keyword.arg == "target" and isinstance(keyword.value, ast.Constant):
                    targets.add(keyword.value.value)
                if keyword.arg == "details" and isinstance(keyword.value, ast.Dict):
                    keys |= {k.value for k in keyword.value.keys if isinstance(k, ast.Constant)}
                elif keyword.arg and name != "record" and keyword.arg not in {
                        "actor", "target", "tenant_id", "reason", "remote_addr", "session", "details"}:
                    keys.add(keyword.arg)
    actions |= {f"tenant.{action}" for action in TRANSITIONS}
    actions |= {"user.deactivated", "user.reactivated"}
    return actions, keys, targets - {None}


def test_every_audit_action_and_detail_the_code_can_record_has_a_german_label():
    """An admin reads what happened, not codes such as "benchmark.participation" or "joined": every action
    and every detail key the code base writes has a label (a new one without a label fails here)."""
    from portal.audit_pages import ACTIONS, DETAIL_KEYS, TARGETS

    actions, keys, targets = _recorded_codes()
    assert {"benchmark.participation", "login.refused", "tenant.approve"} <= actions  # the scan finds them
    assert sorted(actions - set(ACTIONS)) == []
    assert sorted(keys - set(DETAIL_KEYS)) == []
    assert "zsk" in targets and sorted(targets - set(TARGETS)) == []


def test_a_comparison_entry_names_the_areas_in_words(app, two_tenants):
    """The comparison's audit entry lists the areas taken part in, joined and left by their names."""
    from tenants.benchmark.participation import set_families

    a = two_tenants.a
    with app.app_context(), tenant_transaction(a.id) as session:
        set_families(session, a.id, {"usage", "payment"}, actor="user:1 chefin@marburg.de")
    page = sign_in(app, a.id, "admin").get(f"/t/{a.ags}/admin/audit").get_data(as_text=True)
    shown = re.sub(r"<[^>]*>", " ", page.split('id="audit-log"')[1].split("</table>")[0])
    assert "Teilnahme am Kommunenvergleich geändert" in shown and "benchmark.participation" not in shown
    assert "Bezahlverfahren" in shown and "Nutzung, Abschluss und Abbruch" in shown
    assert "usage" not in shown and "payment" not in shown and "joined" not in shown


def test_an_open_data_entry_names_the_licence_and_the_datasets(app, two_tenants):
    """"Lizenz: dl-by-de/2.0; Datensätze: usage, completion" (a walk-through) reads as titles."""
    from tenants.opendata.datasets import DATASETS
    from tenants.opendata.publication import LICENCES

    a = two_tenants.a
    _record(app, a.id, "open_data.publish", "user:1 chefin@marburg.de", datasets=["usage", "completion"],
            licence="dl-by-de/2.0")
    page = sign_in(app, a.id, "admin").get(f"/t/{a.ags}/admin/audit").get_data(as_text=True)
    shown = re.sub(r"<[^>]*>", " ", page.split('id="audit-log"')[1].split("</table>")[0])
    assert LICENCES["dl-by-de/2.0"].title in shown and "dl-by-de/2.0" not in shown
    assert DATASETS["usage"].title in shown and DATASETS["completion"].title in shown
    assert "usage, completion" not in shown
