"""Opting in and out, the refresh, and what operators see."""

from __future__ import annotations

import random
import re
import signal
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from tenants.benchmark import refresh as refresh_module
from tests.benchmark.conftest import HUNDESTEUER, MARBURG, forget_published, last_month, opt_in, run_refresh


def _snapshot(owner_engine):
    with owner_engine.connect() as conn:
        return sorted(conn.execute(text(
            "SELECT group_key, service_key, month, metric, contributors_band, q1, median, q3, mode_label, suppressed "
            "FROM benchmark.figures")).all())


def _csrf(client, path):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def _month_figures(owner_engine, month) -> list:
    return [row for row in _snapshot(owner_engine) if row[2] == month]


def _settled_in(month) -> date:
    """A day on which ``month`` (its first day) is the last month compared."""
    return (month + timedelta(days=40)).replace(day=refresh_module.SETTLE_DAYS + 1)


def test_participation_changes_take_effect_for_the_months_compared_from_then_on(app, hessen, signed_in,
                                                                                 owner_engine, insert_rows):
    """A month is compared once and kept as published (issue 14): joining or withdrawing changes the
    months compared afterwards, never the figures already out."""
    rng = random.Random(3)
    months = [last_month(1, back) for back in (3, 2, 1)]  # A, B, C: first days
    for tenant_id in hessen.ids.values():  # the fixture has C; A and B as well
        insert_rows(tenant_id, "rollup_service_daily", [
            {"service_key": HUNDESTEUER, "day": month.replace(day=12), "started": (st := rng.randint(20, 300)),
             "submitted": (su := rng.randint(st // 3, st)), "aborted": st - su} for month in months[:2]])
    others = [tid for ags, tid in hessen.ids.items() if ags != MARBURG]
    for tenant_id in others:
        opt_in(app, tenant_id)
    run_refresh(app, _settled_in(months[2]))
    without = {month: _month_figures(owner_engine, month) for month in months}
    assert all(without.values())
    forget_published(owner_engine)  # the same world again, now with Marburg taking part

    admin = signed_in(hessen.marburg, "admin")
    path = f"/t/{MARBURG}/vergleich/teilnahme"
    admin.post(path, data={"csrf_token": _csrf(admin, path), "family": ["usage", "payment"]})
    run_refresh(app, _settled_in(months[1]))  # A and B are compared, C is not closed yet
    with_marburg = {month: _month_figures(owner_engine, month) for month in months[:2]}
    assert with_marburg[months[1]] != without[months[1]]  # Marburg's values moved some figure: the test can tell
    assert _month_figures(owner_engine, months[2]) == []

    response = admin.post(path, data={"csrf_token": _csrf(admin, path)}, follow_redirects=True)
    notice = "Bereits veröffentlichte Monate behalten ihre Vergleichswerte"
    assert notice in response.get_data(as_text=True)
    page = admin.get(f"/t/{MARBURG}/vergleich/{HUNDESTEUER}").get_data(as_text=True)
    assert "Sie haben die Teilnahme an diesem Vergleich beendet" in page
    assert "nimmt an diesem Vergleich nicht teil" in page

    run_refresh(app, _settled_in(months[2]))
    # The months already compared stay exactly as published ...
    assert {month: _month_figures(owner_engine, month) for month in months[:2]} == with_marburg
    # ... and the month compared after the withdrawal has Marburg in no figure at all.
    assert _month_figures(owner_engine, months[2]) == without[months[2]]


def test_only_admins_change_participation(app, hessen, signed_in):
    editor = signed_in(hessen.marburg, "editor")
    assert editor.get(f"/t/{MARBURG}/vergleich/teilnahme").status_code == 403
    assert editor.post(f"/t/{MARBURG}/vergleich/teilnahme", data={"family": ["usage"]}).status_code in (400, 403)


def test_peer_group_is_shown_only_when_large_enough(app, hessen, signed_in, owner_engine):
    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id)
    admin = signed_in(hessen.marburg, "admin")
    path = f"/t/{MARBURG}/vergleich/vergleichsgruppe"
    token = _csrf(admin, f"/t/{MARBURG}/vergleich/teilnahme")
    admin.post(path, data={"csrf_token": token, "peer": ["06531005", "06631009"]})
    run_refresh(app)
    small = admin.get(f"/t/{MARBURG}/vergleich/{HUNDESTEUER}.json").get_json()
    peer = next(g["key"] for g in small["groups"] if g["kind"] == "peer")
    cell = next(m for m in small["metrics"] if m["metric"] == "completion_rate")["groups"][peer]
    assert cell["median"] is None and cell["suppressed"]["median"] == "group"

    admin.post(path, data={"csrf_token": token, "peer": list(hessen.ids)[1:12]})
    forget_published(owner_engine)  # last month again, as if first compared with the larger peer group
    run_refresh(app)
    large = admin.get(f"/t/{MARBURG}/vergleich/{HUNDESTEUER}.json").get_json()
    cells = [m["groups"][peer] for m in large["metrics"] if m["metric"] != "abandon_step"]
    assert any(c["median"] is not None for c in cells)


def test_operators_see_participants_and_the_last_refresh(app, hessen, operator, signed_in):
    opt_in(app, hessen.marburg, families=("usage",))
    run_refresh(app)
    html = operator.get("/operator/vergleich").get_data(as_text=True)
    assert "Marburg, Universitätsstadt" in html and ">erfolgreich<" in html and "succeeded" not in html
    head = html[html.index("Teilnehmende Mandanten"):].split("</thead>")[0]  # the areas in words, not their codes
    assert "Nutzung, Abschluss und Abbruch" in head and ">usage<" not in head and ">payment<" not in head
    row = html[html.index("Marburg, Universitätsstadt"):].split("</tr>")[0]
    assert row.count(">ja ") == 1 and row.count(">nein<") == 3
    assert signed_in(hessen.marburg, "admin").get("/operator/vergleich").status_code == 403


def test_parallel_refresh_publishes_the_same_figures(app, hessen, owner_engine, monkeypatch):
    """Hessen-wide refreshes read and compute on every core; the figures must not depend on that."""
    import tenants.benchmark.refresh as refresh_module

    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id, families=("usage", "payment"))
    run_refresh(app)
    sequential = _snapshot(owner_engine)
    forget_published(owner_engine)
    monkeypatch.setattr(refresh_module, "PARALLEL_TENANTS", 1)
    monkeypatch.setattr(refresh_module, "PARALLEL_FROM", 1)
    monkeypatch.setattr(refresh_module.os, "cpu_count", lambda: 2)
    # An RQ worker run earlier in the same process (the CLI, other tests) leaves a SIGTERM handler that only
    # asks for a warm shutdown; forked readers inherit it and must still end when the pool is done.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        run_refresh(app)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert _snapshot(owner_engine) == sequential
    assert len(sequential) > 20


def test_a_failed_refresh_keeps_the_published_figures_and_their_key(app, hessen, owner_engine, monkeypatch,
                                                                    insert_rows):
    earlier = last_month(1, 2)
    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id)
        insert_rows(tenant_id, "rollup_service_daily", [
            {"service_key": HUNDESTEUER, "day": earlier.replace(day=12), "started": 90, "submitted": 60,
             "aborted": 30}])
    run_refresh(app, _settled_in(earlier))
    published = _snapshot(owner_engine)
    assert published and {row[2] for row in published} == {earlier}

    def broken_copy(session, rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(refresh_module, "_copy_rows", broken_copy)
    with pytest.raises(RuntimeError):
        run_refresh(app)
    assert _snapshot(owner_engine) == published
    monkeypatch.undo()
    run_refresh(app)
    with owner_engine.connect() as conn:
        key = conn.execute(text("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                "WHERE conrelid = 'benchmark.figures'::regclass AND contype = 'p'")).scalar()
    assert key == "PRIMARY KEY (service_key, month, group_key, metric)"  # the page's lookups stay indexed


def test_step_labels_with_tabs_backslashes_and_line_breaks_reach_the_figures_unchanged(app, hessen):
    """Step names come from source systems; COPY's text format must not split or alter them."""
    from datetime import date

    from tenants.context import platform_transaction

    label = "3. Nachweise\thochladen \\ prüfen\nund senden"
    row = ("hessen", HUNDESTEUER, date(2026, 3, 1), "abandon_step", 10, None, None, None, label, "")
    with app.app_context(), platform_transaction() as session:
        session.execute(text("SELECT benchmark.clear_figures()"))
        refresh_module._copy_rows(session, ["\t".join(map(refresh_module.copy_field, row)) + "\n"])
        stored = session.execute(text("SELECT mode_label, q1 FROM benchmark.figures")).all()
        session.rollback()
    assert [tuple(r) for r in stored] == [(label, None)]


def test_months_due_are_the_settled_months_without_figures():
    november, october = date(2026, 11, 1), date(2026, 10, 1)
    assert refresh_module.months_due(date(2026, 12, 3), set())[-1] == october  # November not settled yet
    due = refresh_module.months_due(date(2026, 12, 4), set())
    assert len(due) == 36 and due[0] == date(2023, 12, 1) and due[-1] == november
    assert refresh_module.months_due(date(2026, 12, 4), set(due) - {november}) == [november]
    assert refresh_module.months_due(date(2026, 12, 20), set(due)) == []


def test_a_compared_month_is_not_read_again(app, hessen, owner_engine, operator, insert_rows, monkeypatch):
    """A month is compared once (issue 14); later nights read no tenant and publish nothing about it, not
    even for a service whose data arrived late: that would be a second state of the month."""
    for tenant_id in hessen.ids.values():
        opt_in(app, tenant_id)
    months = refresh_module.months_due(_settled_in(last_month(1)), set())
    # Marburg has data in every month compared, so each gets figures (withheld ones, too few contributors).
    insert_rows(hessen.marburg, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": month.replace(day=5), "started": 50, "submitted": 40, "aborted": 10}
        for month in months[:-1]])
    first = run_refresh(app, _settled_in(last_month(1)))
    published = _snapshot(owner_engine)
    assert first["months"] == 36 and first["figures"] == len(published) and {r[2] for r in published} == set(months)

    late_service = "99102013105000"
    for tenant_id in hessen.ids.values():
        insert_rows(tenant_id, "services", [{"service_key": late_service, "name": "Nachgeliefert"}])
        insert_rows(tenant_id, "rollup_service_daily", [
            {"service_key": late_service, "day": last_month(), "started": 80, "submitted": 50, "aborted": 30}])
    reads = []
    original = refresh_module.read_tenant
    monkeypatch.setattr(refresh_module, "read_tenant", lambda *args: reads.append(args) or original(*args))
    second = run_refresh(app, _settled_in(last_month(1)) + timedelta(days=5))
    assert (second["months"], second["figures"], reads) == (0, 0, [])
    assert _snapshot(owner_engine) == published

    html = operator.get("/operator/vergleich").get_data(as_text=True)
    latest = html[html.index("<tbody"):].split("</tr>")[0]
    assert "erfolgreich (kein neuer Monat fällig)" in latest and ">–<" in latest  # no participants read
