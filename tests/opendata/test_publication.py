"""Publishing, downloading and withdrawing, as a tenant admin and the public would."""

import csv
import io
import json
import re
from datetime import date

import pytest
from rdflib import Graph
from rdflib.namespace import DCAT, RDF

from tenants.context import platform_transaction, tenant_transaction
from tenants.models import Tenant
from tenants.opendata.datasets import DATASETS, column_names
from tenants.opendata.publication import Rules

from .conftest import GEWERBE, HUNDESTEUER, publish, withdraw

MARBURG = "06534014"
COUNT_COLUMNS = {"started", "submitted", "aborted", "payments", "authentications", "ratings"}


def rows_of(response) -> list[dict]:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def catalogue_datasets(client) -> set[str]:
    graph = Graph().parse(data=client.get("/catalog.ttl").data, format="turtle")
    return {str(d) for d in graph.subjects(RDF.type, DCAT.Dataset)}


def test_admin_publishes_and_the_public_downloads(client, marburg_data, staff):
    response = publish(staff(marburg_data.a), MARBURG, ["usage"])
    assert response.status_code == 302
    rows = rows_of(client.get(f"/opendata/{MARBURG}/usage.csv"))
    assert list(rows[0]) == column_names("usage")
    hundesteuer = [r for r in rows if r["service_key"] == HUNDESTEUER]
    # Two complete months; the running month (77 submissions) is not published.
    assert [(r["month"], r["submitted"]) for r in hundesteuer][0][1] == "30"
    assert all(r["submitted"] != "77" for r in rows)
    document = json.loads(client.get(f"/opendata/{MARBURG}/usage.json").data)
    assert document["licence"]["id"] == "dl-by-de/2.0"
    assert [c["name"] for c in document["columns"]] == column_names("usage")
    assert len(document["rows"]) == len(rows)
    page = client.get(f"/opendata/{MARBURG}/").get_data(as_text=True)
    assert "Nutzung der Online-Dienste" in page and "Offene Daten" in page
    overview = client.get("/opendata/").get_data(as_text=True)
    assert "Marburg, Universitätsstadt" in overview and "/catalog.ttl" in overview
    assert "Fulda" not in overview  # publishes nothing


def test_downloads_are_cacheable_and_conditional(client, marburg_data, staff):
    publish(staff(marburg_data.a), MARBURG, ["usage"])
    for fmt in ("csv", "json"):
        first = client.get(f"/opendata/{MARBURG}/usage.{fmt}")
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert etag and modified
        assert client.get(f"/opendata/{MARBURG}/usage.{fmt}", headers={"If-None-Match": etag}).status_code == 304
        assert client.get(f"/opendata/{MARBURG}/usage.{fmt}",
                          headers={"If-Modified-Since": modified}).status_code == 304
        assert client.get(f"/opendata/{MARBURG}/usage.{fmt}").headers["ETag"] == etag  # stable


def test_etag_changes_when_the_data_does(client, marburg_data, staff, rollups):
    publish(staff(marburg_data.a), MARBURG, ["usage"])
    before = client.get(f"/opendata/{MARBURG}/usage.csv").headers["ETag"]
    from .conftest import month_day
    rollups(marburg_data.a.id, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": month_day(1, 25), "started": 10, "submitted": 10, "aborted": 0}])
    assert client.get(f"/opendata/{MARBURG}/usage.csv").headers["ETag"] != before


def test_withdrawn_dataset_leaves_the_catalogue_and_answers_410(client, marburg_data, staff):
    admin = staff(marburg_data.a)
    publish(admin, MARBURG, ["usage", "payment"])
    assert any(d.endswith("/usage#dataset") for d in catalogue_datasets(client))
    assert withdraw(admin, MARBURG, "usage").status_code == 302
    for path in ("usage.csv", "usage.json", "usage"):
        assert client.get(f"/opendata/{MARBURG}/{path}").status_code == 410
    remaining = catalogue_datasets(client)
    assert not any(d.endswith("/usage#dataset") for d in remaining)
    assert any(d.endswith("/payment#dataset") for d in remaining)
    assert f"/opendata/{MARBURG}/usage.csv" not in client.get(f"/opendata/{MARBURG}/").get_data(as_text=True)
    assert client.get(f"/opendata/{MARBURG}/payment.csv").status_code == 200
    # Publishing again brings it back.
    publish(admin, MARBURG, ["usage"])
    assert client.get(f"/opendata/{MARBURG}/usage.csv").status_code == 200


def test_an_unpublished_tenants_data_is_unreachable(client, marburg_data, staff, rollups):
    fulda = marburg_data.b
    rollups(fulda.id, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": date(2026, 1, 5), "started": 555, "submitted": 444, "aborted": 99}])
    publish(staff(marburg_data.a), MARBURG, list(DATASETS))
    for dataset in DATASETS:
        for suffix in (".csv", ".json", ""):
            assert client.get(f"/opendata/{fulda.ags}/{dataset}{suffix}").status_code == 404
    assert all(f"/{fulda.ags}/" not in d for d in catalogue_datasets(client))
    tenant_catalogue = Graph().parse(data=client.get(f"/opendata/{fulda.ags}/catalog.ttl").data, format="turtle")
    assert not list(tenant_catalogue.subjects(RDF.type, DCAT.Dataset))
    # Nor does any of Fulda's figures leak into Marburg's downloads.
    for dataset in DATASETS:
        for row in rows_of(client.get(f"/opendata/{MARBURG}/{dataset}.csv")):
            assert row["month"] != "2026-01" and not {"444", "555"} & set(row.values())


def test_a_suspended_tenant_publishes_nothing(app, client, marburg_data, staff):
    publish(staff(marburg_data.a), MARBURG, ["usage"])
    with app.app_context(), platform_transaction() as session:
        session.get(Tenant, marburg_data.a.id).status = "suspended"
    assert client.get(f"/opendata/{MARBURG}/usage.csv").status_code == 404
    assert catalogue_datasets(client) == set()


def _hidden_remainder_ok(rows, measure, rules):
    """Per month: the month total minus the published services is 0 or at least the threshold."""
    by_month = {}
    for row in rows:
        by_month.setdefault(row["month"], []).append(row)
    for month_rows in by_month.values():
        total = next(r for r in month_rows if r["service_key"] == "total")
        if total[measure] == "":
            continue
        shown = sum(int(r[measure]) for r in month_rows if r["service_key"] != "total" and r[measure] != "")
        hidden = int(total[measure]) - shown
        assert not 0 < hidden < rules.min_cases, (measure, month_rows)


def test_suppressed_cells_never_appear_in_any_download(client, marburg_data, staff):
    publish(staff(marburg_data.a), MARBURG, list(DATASETS))
    rules = Rules()
    for dataset in DATASETS:
        csv_rows = rows_of(client.get(f"/opendata/{MARBURG}/{dataset}.csv"))
        json_rows = json.loads(client.get(f"/opendata/{MARBURG}/{dataset}.json").data)["rows"]
        assert len(csv_rows) == len(json_rows)
        for csv_row, json_row in zip(csv_rows, json_rows, strict=True):
            hidden = set(filter(None, csv_row["suppressed"].split(";")))
            for column in COUNT_COLUMNS & set(csv_row):
                value = csv_row[column]
                assert (value == "") == (column in hidden)
                assert value == "" or not 0 < int(value) < rules.min_cases, (dataset, csv_row)
                assert json_row[column] == (None if value == "" else int(value))
            for column in hidden:
                assert csv_row[column] == "" and json_row[column] is None
    usage = rows_of(client.get(f"/opendata/{MARBURG}/usage.csv"))
    gewerbe = next(r for r in usage if r["service_key"] == GEWERBE)
    assert gewerbe["submitted"] == ""  # 2 submissions: withheld
    # ... and cannot be recovered as started - aborted, nor from the month's total.
    assert gewerbe["aborted"] == ""
    for measure in ("started", "submitted", "aborted"):
        _hidden_remainder_ok(usage, measure, rules)
    completion = rows_of(client.get(f"/opendata/{MARBURG}/completion.csv"))
    assert next(r for r in completion if r["service_key"] == GEWERBE)["completion_rate"] == ""
    payment = rows_of(client.get(f"/opendata/{MARBURG}/payment.csv"))
    assert {r["payment_method"]: r["payments"] for r in payment} == {
        "paypal": "20", "credit_card": "", "sepa_direct_debit": "", "total": "30"}


def _table(html_page: str) -> list[list[str]]:
    """The cells of an HTML table's rows, header first, as the admin reads them."""
    import html
    import re

    return [[html.unescape(cell) for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", html_page, re.S)]


def test_preview_shows_exactly_what_becomes_public(app, client, marburg_data, staff):
    """The expected rows are worked out by hand from marburg_data and docs/confidentiality.md.

    Last month (m1): Gewerbe 9 started = 2 submitted + 6 aborted + 1 open; Hundesteuer 40 = 30 + 8 + 2;
    Wohnsitz 120 = 100 + 15 + 5; Veranstaltung 12 = 11 + 1 + 0. Primary: Gewerbe's 2 submissions and
    Veranstaltung's 1 abandonment. Secondary: the month's submitted total minus the others would
    give Gewerbe's 2, so the cheapest other submitted cell (Veranstaltung's 11) is withheld; likewise
    aborted (Gewerbe's 6). Hundesteuer's started minus its published submitted and aborted would
    leave its 2 open cases, so its aborted (8, cheaper than 30) is withheld too. The month before
    (m2): Hundesteuer alone, 35 + 5 started, 25 + 5 submitted, 10 + 0 aborted, nothing small.
    """
    from .conftest import month_day

    m1, m2 = f"{month_day(1):%Y-%m}", f"{month_day(2):%Y-%m}"
    raw = [
        ["month", "service_key", "leika_key", "service_name", "started", "submitted", "aborted", "suppressed"],
        [m2, HUNDESTEUER, HUNDESTEUER, "Hundesteuer Anmeldung", "40", "30", "10", ""],
        [m2, "total", "", "Alle Online-Dienste", "40", "30", "10", ""],
        [m1, GEWERBE, GEWERBE, "Gewerbe anmelden", "9", "", "", "submitted;aborted"],
        [m1, HUNDESTEUER, HUNDESTEUER, "Hundesteuer Anmeldung", "40", "30", "", "aborted"],
        [m1, "99115005104000", "99115005104000", "Wohnsitz anmelden", "120", "100", "15", ""],
        [m1, "local:veranstaltung", "", "Veranstaltung anmelden", "12", "", "", "submitted;aborted"],
        [m1, "total", "", "Alle Online-Dienste", "181", "143", "30", ""],
    ]
    # The admin reads the same rows in words: headings with the file's column name below, months by name,
    # the sum rows as "alle", withheld columns by their headings.
    months = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
              "November", "Dezember")
    heading = {"month": "Monat", "service_key": "Dienstschlüssel", "leika_key": "LeiKa-Schlüssel",
               "service_name": "Online-Dienst", "started": "Begonnen", "submitted": "Abgeschickt",
               "aborted": "Abgebrochen", "suppressed": "Zurückgehalten"}
    expected = [[f"{heading[name]} {name}" for name in raw[0]]] + [
        [f"{months[int(row[0][5:]) - 1]} {row[0][:4]}", "alle" if row[1] == "total" else row[1], *row[2:7],
         ", ".join(heading[name] for name in row[7].split(";") if name)] for row in raw[1:]]
    admin = staff(marburg_data.a)
    page = admin.get(f"/t/{MARBURG}/opendata/usage/preview")
    assert page.status_code == 200
    assert [[" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in row]
            for row in _table(page.get_data(as_text=True))] == expected
    expected = raw
    assert client.get(f"/opendata/{MARBURG}/usage.json").status_code == 404  # nothing public yet
    publish(admin, MARBURG, ["usage"])
    public = rows_of(client.get(f"/opendata/{MARBURG}/usage.csv"))
    assert [list(public[0])] + [list(r.values()) for r in public] == expected


@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("editor", 403), ("admin", 200)])
def test_only_tenant_admins_manage_publication(marburg_data, staff, role, expected):
    assert staff(marburg_data.a, role).get(f"/t/{MARBURG}/opendata/").status_code == expected


def test_another_tenants_admin_gets_404(client, marburg_data, staff):
    fulda_admin = staff(marburg_data.b)
    assert fulda_admin.get(f"/t/{MARBURG}/opendata/").status_code == 404
    anonymous = client.get(f"/t/{MARBURG}/opendata/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_publishing_needs_a_csrf_token(marburg_data, staff):
    admin = staff(marburg_data.a)
    response = admin.post(f"/t/{MARBURG}/opendata/publish", data={"dataset": "usage", "licence": "cc-by/4.0",
                                                                "contact_email": "a@b.de"})
    assert response.status_code == 400


def test_licence_choice_and_bad_input(client, marburg_data, staff):
    admin = staff(marburg_data.a)
    publish(admin, MARBURG, ["usage"], licence="dl-zero-de/2.0")
    assert json.loads(client.get(f"/opendata/{MARBURG}/usage.json").data)["licence"]["id"] == "dl-zero-de/2.0"
    publish(admin, MARBURG, ["payment"], licence="cc-by-sa/9.9")
    assert client.get(f"/opendata/{MARBURG}/payment.csv").status_code == 404
    for bad in ("not-an-address", "a@b"):
        response = publish(admin, MARBURG, ["payment"], email=bad)
        assert response.status_code == 302  # back to the form with a message, not an error page
        assert client.get(f"/opendata/{MARBURG}/payment.csv").status_code == 404


def test_publishing_is_audited(app, marburg_data, staff):
    from sqlalchemy import select

    from tenants.models import AuditEvent

    admin = staff(marburg_data.a)
    publish(admin, MARBURG, ["usage"])
    withdraw(admin, MARBURG, "usage")
    with app.app_context(), tenant_transaction(marburg_data.a.id) as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["open_data.publish", "open_data.withdraw"]


def test_public_endpoints_are_rate_limited(client, marburg_data):
    response = client.get(f"/opendata/{MARBURG}/")
    assert response.headers.get("X-RateLimit-Limit") == "120"
