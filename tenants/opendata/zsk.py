"""The export for the federal Zentrale Statistik-Komponente (ZSK).

The ZSK's core indicator is the monthly *transaction count* ("Transaktionen")
per online service and region: each submitted initial application
(Erstantrag), notification (Anzeige) or report (Meldung). Counting rule here
(docs/zsk-export.md):

* a transaction is a ``submitted`` event of a service, counted in the month
  (Europe/Berlin, as the rollups' day) it was submitted; started, aborted,
  payment and authentication events do not count;
* only services with a LeiKa key are reported (``analytics.services.leika_key``,
  or a 14-digit ``service_key`` starting with 99); local services (``local:…``)
  have no federal key and are left out;
* the region is the tenant's ARS (12 digits); a district reports its district ARS;
* only complete months; zero months are not listed.

The ZSK is official statistics and does its own confidentiality, so these are
the real counts, without suppression; the file is for tenant admins and
operators only, never public. The official interface format is not public
(Infopaket of the ZSK team); the CSV columns follow the ZSK's indicator:
``berichtsmonat;leistungsschluessel;ars;gebiet;transaktionen``.
"""

from __future__ import annotations

import csv
import io
from datetime import date

from sqlalchemy import select, text

from tenants.context import platform_transaction, tenant_transaction
from tenants.db import db
from tenants.models import Tenant
from tenants.opendata.publication import spreadsheet_safe

COLUMNS = ("berichtsmonat", "leistungsschluessel", "leistungsname", "ars", "gebiet", "transaktionen")

_COUNT = text("""
SELECT to_char(date_trunc('month', r.day), 'YYYY-MM') AS month,
       coalesce(s.leika_key, r.service_key) AS leika,
       min(s.name) AS name,
       sum(r.submitted) AS transactions
FROM analytics.rollup_service_daily r
LEFT JOIN analytics.services s ON s.tenant_id = r.tenant_id AND s.service_key = r.service_key
WHERE r.tenant_id = :tenant
  AND r.day >= :since AND r.day < date_trunc('month', CAST(:today AS date))
  AND coalesce(s.leika_key, r.service_key) ~ '^99[0-9]{12}$'
GROUP BY 1, 2
HAVING sum(r.submitted) > 0
ORDER BY 1, 2
""")


def tenant_rows(tenant_id: int, since: date, today: date) -> list[dict]:
    """The ZSK rows of one tenant, read in its own transaction."""
    with platform_transaction():
        tenant = db.session.get(Tenant, tenant_id)
        ars, name = tenant.ars, tenant.name
    with tenant_transaction(tenant_id) as session:
        rows = session.execute(_COUNT, {"tenant": tenant_id, "since": since, "today": today}).all()
    return [{"berichtsmonat": month, "leistungsschluessel": leika, "leistungsname": service_name or "",
             "ars": ars, "gebiet": name, "transaktionen": int(count)}
            for month, leika, service_name, count in rows]


def operator_rows(since: date, today: date) -> list[dict]:
    """Every active tenant's rows, one tenant transaction after the other."""
    with platform_transaction():
        ids = list(db.session.scalars(select(Tenant.id).where(Tenant.is_active).order_by(Tenant.ars)))
    rows = []
    for tenant_id in ids:
        rows += tenant_rows(tenant_id, since, today)
    return sorted(rows, key=lambda r: (r["berichtsmonat"], r["ars"], r["leistungsschluessel"]))


def to_csv(rows: list[dict]) -> bytes:
    """Semicolon-separated UTF-8 with header, as German statistics offices exchange CSV; text that would
    start a spreadsheet formula is prefixed with an apostrophe, as in the public CSV."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue().encode("utf-8")
