"""What a citizen sees of Open Data: a way in from the start page, a CSV German Excel opens in columns,
a preview and the date of the last update on each dataset page."""

from __future__ import annotations

import csv
import io

from tenants.opendata.datasets import column_names

from .conftest import HUNDESTEUER, publish

MARBURG = "06534014"
MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
          "November", "Dezember")


def test_the_start_page_leads_to_open_data(client, two_tenants):
    page = client.get("/").get_data(as_text=True)
    assert 'href="/opendata/"' in page


def test_the_excel_csv_is_the_standard_table_in_german_notation(client, marburg_data, staff):
    assert publish(staff(marburg_data.a), MARBURG, ["usage", "completion"]).status_code == 302
    standard = list(csv.DictReader(io.StringIO(client.get(f"/opendata/{MARBURG}/completion.csv").get_data(
        as_text=True))))
    response = client.get(f"/opendata/{MARBURG}/completion.excel.csv")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert response.data.startswith(b"\xef\xbb\xbf")
    excel = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    assert list(excel[0]) == column_names("completion") and len(excel) == len(standard)
    for plain, german in zip(standard, excel, strict=True):
        year, month = plain["month"].split("-")
        assert german["month"] == f"{MONTHS[int(month) - 1]} {year}"
        for name in ("completion_rate", "abandonment_rate"):
            assert german[name] == plain[name].replace(".", ",")
        assert german["started"] == plain["started"]
    assert any("," in row["completion_rate"] for row in excel)
    # The standard CSV is unchanged: commas and ISO months.
    assert standard[0]["month"][4] == "-"


def test_a_dataset_page_shows_a_preview_the_last_update_and_all_downloads(client, marburg_data, staff):
    assert publish(staff(marburg_data.a), MARBURG, ["usage"]).status_code == 302
    page = client.get(f"/opendata/{MARBURG}/usage").get_data(as_text=True)
    assert "Zuletzt aktualisiert:" in page
    preview = page.split('id="preview"')[1].split("</table>")[0]
    assert HUNDESTEUER in preview and any(m in preview for m in MONTHS)
    for href in ("usage.excel.csv", "usage.csv", "usage.json"):
        assert f'href="/opendata/{MARBURG}/{href}"' in page
    tenant_page = client.get(f"/opendata/{MARBURG}/").get_data(as_text=True)
    assert f'href="/opendata/{MARBURG}/usage.excel.csv"' in tenant_page


def test_the_preview_names_columns_and_methods_in_german(client, marburg_data, staff):
    """The preview is for people: short German headings (the file's column name below, for programs), payment
    methods by their names and sum rows as "alle", not "credit_card" or "total"; the files keep the codes."""
    import re

    from tenants.vocabulary import PAYMENT_METHODS

    assert publish(staff(marburg_data.a), MARBURG, ["payment"]).status_code == 302
    page = client.get(f"/opendata/{MARBURG}/payment").get_data(as_text=True)
    preview = page.split('id="preview"')[1].split("</table>")[0]
    headings = re.findall(r"<th[^>]*>(.*?)</th>", preview)
    assert 'Bezahlverfahren<br><code class="kern-body--small">payment_method</code>' in headings
    cells = set(re.findall(r"<td[^>]*>([^<]*)</td>", preview))
    assert cells & {"PayPal", "Kreditkarte", "alle"} and not cells & ({"total"} | set(PAYMENT_METHODS))
    assert "credit_card" in client.get(f"/opendata/{MARBURG}/payment.csv").get_data(as_text=True)
    # Within a service and month the methods come first and their sum row last (a walk-through found "alle"
    # between PayPal and Wero).
    rows = [cells_of_row for row in re.findall(r"<tr>(.*?)</tr>", preview, flags=re.S)
            if (cells_of_row := re.findall(r"<td[^>]*>([^<]*)</td>", row))]
    position = headings.index('Bezahlverfahren<br><code class="kern-body--small">payment_method</code>')
    groups: dict = {}
    for cells_of_row in rows:
        groups.setdefault(tuple(cells_of_row[:position]), []).append(cells_of_row[position])
    assert any(len(methods) > 2 for methods in groups.values())
    assert all("alle" not in methods[:-1] for methods in groups.values()), groups
    # Shares read as percentages, as the headings say, not as 0,4512.
    share = headings.index('Anteil<br><code class="kern-body--small">share</code>')
    assert all(re.fullmatch(r"[\d.]+,\d %|", cells_of_row[share].replace("\xa0", " ")) for cells_of_row in rows), rows
