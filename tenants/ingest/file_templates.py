"""Files a clerk can start from: per mapping profile an empty template and a filled example, as CSV
(semicolon, UTF-8 with BOM: German Excel opens it in columns) and as Excel workbook (.xlsx).

Both are read back by the same upload path as any other file (tests/ingest/test_file_templates.py
loads every example and expects every row accepted). Example dates lie in the last full month, so
an example is always within the months an upload accepts.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from tenants.ingest.profiles import Profile

FORMATS = ("csv", "xlsx")
HUNDESTEUER = "99102013104000"
GEWERBE = "99050012104000"


def headers(profile: Profile) -> list[str]:
    """The columns of a file in ``profile``: the required ones first, then the optional ones."""
    required, optional = profile.expected_headers()
    return required + optional


def _last_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def _events(first: date) -> list[dict]:
    d = first.isoformat()
    return [
        {"occurred_at": f"{d}T09:15:00", "service_key": HUNDESTEUER, "session_id": "sitzung-1",
         "event_type": "started", "channel": "web"},
        {"occurred_at": f"{d}T09:16:00", "service_key": HUNDESTEUER, "session_id": "sitzung-1",
         "event_type": "step_reached", "step_no": 1, "step_name": "Angaben zum Hund", "channel": "web"},
        {"occurred_at": f"{d}T09:18:00", "service_key": HUNDESTEUER, "session_id": "sitzung-1",
         "event_type": "authentication", "step_no": 2, "step_name": "Anmelden", "channel": "web",
         "auth_method": "bundid_eid", "trust_level": "substanziell"},
        {"occurred_at": f"{d}T09:20:00", "service_key": HUNDESTEUER, "session_id": "sitzung-1",
         "event_type": "payment", "step_no": 3, "step_name": "Bezahlen", "channel": "web",
         "payment_method": "paypal", "payment_provider": "epay21"},
        {"occurred_at": f"{d}T09:21:00", "service_key": HUNDESTEUER, "session_id": "sitzung-1",
         "event_type": "submitted", "channel": "web"},
        {"occurred_at": f"{d}T10:02:00", "service_key": HUNDESTEUER, "session_id": "sitzung-2",
         "event_type": "started", "channel": "ios"},
        {"occurred_at": f"{d}T10:05:00", "service_key": HUNDESTEUER, "session_id": "sitzung-2",
         "event_type": "aborted", "step_no": 1, "step_name": "Angaben zum Hund", "channel": "ios"},
    ]


def _aggregates(first: date) -> list[dict]:
    rows = []
    for offset, (started, submitted, aborted) in enumerate(((42, 35, 7), (38, 30, 8))):
        day = (first + timedelta(days=offset)).isoformat()
        rows += [{"day": day, "service_key": HUNDESTEUER, "measure": m, "value": v, "channel": "web"}
                 for m, v in (("started", started), ("submitted", submitted), ("aborted", aborted))]
    return rows


def _civento(first: date) -> list[dict]:
    return [{"Datum": (first + timedelta(days=offset)).strftime("%d.%m.%Y"), "Leistungsschlüssel": key,
             "Kanal": "Web", "Anträge gestartet": started, "Anträge abgeschickt": submitted,
             "Anträge abgebrochen": started - submitted}
            for offset in (0, 1) for key, started, submitted in ((HUNDESTEUER, 40, 33), (GEWERBE, 12, 9))]


def _maengelmelder(first: date) -> list[dict]:
    at = first.strftime("%d.%m.%Y")
    return [
        {"Meldungs-ID": "M-1001", "Zeitpunkt": f"{at} 08:10", "Herkunft": "iOS-App", "Status": "begonnen"},
        {"Meldungs-ID": "M-1001", "Zeitpunkt": f"{at} 08:11", "Herkunft": "iOS-App", "Status": "Schritt erreicht",
         "Schritt": 1, "Schrittbezeichnung": "Ort wählen"},
        {"Meldungs-ID": "M-1001", "Zeitpunkt": f"{at} 08:13", "Herkunft": "iOS-App", "Status": "abgeschickt"},
        {"Meldungs-ID": "M-1002", "Zeitpunkt": f"{at} 09:40", "Herkunft": "Webportal", "Status": "begonnen"},
        {"Meldungs-ID": "M-1002", "Zeitpunkt": f"{at} 09:42", "Herkunft": "Webportal", "Status": "abgebrochen",
         "Schritt": 1, "Schrittbezeichnung": "Ort wählen"},
    ]


#: Example rows of the shipped profiles, keyed by profile name; values by the file's own headers.
EXAMPLES = {"canonical": _events, "canonical-aggregates": _aggregates, "civento": _civento,
            "maengelmelder": _maengelmelder}


def has_example(profile: Profile) -> bool:
    return profile.name in EXAMPLES


def example_rows(profile: Profile, today: date) -> list[dict]:
    """The example of a shipped profile, dated in the last full month before ``today``.

    :raise KeyError: for a profile without an example (a data source's own mapping).
    """
    return EXAMPLES[profile.name](_last_month(today))


def render(profile: Profile, rows: list[dict], fmt: str) -> bytes:
    """``rows`` (empty for a template) as a file in ``fmt`` (``csv`` or ``xlsx``) with the profile's columns."""
    columns = headers(profile)
    table = [[row.get(c, "") for c in columns] for row in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows(table)
        return out.getvalue().encode("utf-8-sig")
    if fmt == "xlsx":
        return _xlsx(columns, table)
    raise ValueError(f"unknown format {fmt!r}")


def _xlsx(columns: list[str], table: list[list]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Daten"
    sheet.append(columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table:
        sheet.append([None if value == "" else value for value in row])
    for index, name in enumerate(columns, start=1):
        width = max([len(str(name))] + [len(str(r[index - 1])) for r in table]) + 2
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = min(width, 40)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
