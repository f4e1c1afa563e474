"""The operator console for hundreds of tenants: search, filters, paging, words instead of codes."""

from __future__ import annotations

from tenants.context import tenant_transaction
from tests.conftest import add_operator, client_as

# Marburg (Landkreis Marburg-Biedenkopf, 50k–100k), Wetter (same Landkreis, under 10k), Fulda (Landkreis Fulda),
# the Landkreis Bergstraße itself.
MARBURG, WETTER, FULDA, BERGSTRASSE = "06534014", "06534019", "06631009", "06431"


def _tenants(app, statuses: dict[str, str]) -> None:
    from tenants.registry import create_tenant

    with app.app_context(), tenant_transaction(None):
        for ags, status in statuses.items():
            create_tenant(ags, status=status)


def _rows(page: str) -> list[str]:
    table = page.split('id="tenants"')[1].split("</table>")[0] if 'id="tenants"' in page else ""
    return [part.split('"')[0] for part in table.split('data-ags="')[1:]]


def test_search_and_filters(app, clean_db):
    _tenants(app, {MARBURG: "active", WETTER: "pending", FULDA: "suspended", BERGSTRASSE: "active"})
    client = client_as(app, add_operator(app))
    page = client.get("/operator/").get_data(as_text=True)
    # Pending first, then active; a district shows its official name.
    assert _rows(page)[0] == WETTER and "Landkreis Bergstraße" in page
    assert _rows(client.get("/operator/?q=marb").get_data(as_text=True)) == [MARBURG]
    assert _rows(client.get("/operator/?q=0663").get_data(as_text=True)) == [FULDA]
    assert _rows(client.get("/operator/?status=suspended").get_data(as_text=True)) == [FULDA]
    assert sorted(_rows(client.get("/operator/?kreis=06534").get_data(as_text=True))) == [MARBURG, WETTER]
    assert sorted(_rows(client.get("/operator/?size=size:50k-100k").get_data(as_text=True))) == [MARBURG, FULDA]
    assert _rows(client.get("/operator/?size=size:districts").get_data(as_text=True)) == [BERGSTRASSE]
    assert _rows(client.get("/operator/?q=gibt-es-nicht").get_data(as_text=True)) == []


def test_numbers_times_and_links_for_a_tenant(app, clean_db):
    _tenants(app, {MARBURG: "active"})
    client = client_as(app, add_operator(app))
    page = client.get("/operator/").get_data(as_text=True)
    row = page.split(f'data-ags="{MARBURG}"')[1].split("</tr>")[0]
    assert "Aktiv" in row and f'href="/ops/t/{MARBURG}/ingest/"' in row
    population = row.split("kern-table__cell--numeric\">")[1].split("<")[0]
    assert "." in population and population.replace(".", "").isdigit()  # 77.000, not 77000
    assert "T" not in row.split("</td>")[-3] and "+00:00" not in row  # a German date, not ISO
    tenant_page = client.get(f"/operator/tenants/{MARBURG}").get_data(as_text=True)
    assert 'id="ingest-health"' in tenant_page and "/operator/vergleich" in tenant_page
    assert "Noch nicht gelaufen." in tenant_page


def test_provisioning_in_words(app, clean_db):
    from portal.views.operator import provisioning_text

    with app.test_request_context("/"):
        text = provisioning_text({"action": "provision", "status": "succeeded", "steps": [],
                                  "started_at": "2026-11-29T09:53:00+00:00",
                                  "finished_at": "2026-11-29T09:53:03+00:00"})
    assert text == "Vollständig eingerichtet am 29.11.26, 10:53."


def test_paging_keeps_the_filter(app, clean_db):
    from sqlalchemy import select

    from tenants.models import Region
    from tenants.registry import create_tenant

    with app.app_context(), tenant_transaction(None) as session:
        for ags in session.scalars(select(Region.ags).where(Region.kind != "landkreis").order_by(Region.ags).limit(55)):
            create_tenant(ags, status="active")
    client = client_as(app, add_operator(app))
    first = client.get("/operator/?status=active").get_data(as_text=True)
    assert len(_rows(first)) == 50 and "55 Mandanten gefunden" in first
    assert 'href="/operator/?page=2&amp;q=&amp;status=active&amp;kreis=&amp;size="' in first
    assert len(_rows(client.get("/operator/?status=active&page=2").get_data(as_text=True))) == 5
