"""The Open Data datasets: what each contains, and how its rows are built from the rollups.

Every dataset is monthly, per online service, for complete months only (the
running month changes daily and would make every download a moving target).
Each has rows per service and month plus total rows; all counts pass the
confidentiality rules (tenants/confidentiality.py) before they leave, and a
rate or share is published only when every count it is computed from is.

Column meanings are in :data:`DATASETS` (German, shown on the public page) and
in docs/open-data.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenants.confidentiality import Atom, Figure, Protection, Rules, protect

#: service_key of the rows that add up all services of a month.
TOTAL = "total"
#: The category of the rows that add up all methods of a service and month.
ALL = "total"


@dataclass(frozen=True)
class Column:
    name: str
    description: str  # German, for the public page and the JSON metadata


@dataclass(frozen=True)
class Dataset:
    key: str
    title: str
    description: str
    keywords: tuple[str, ...]
    columns: tuple[Column, ...]


_SERVICE_COLUMNS = (
    Column("month", "Berichtsmonat (JJJJ-MM)"),
    Column("service_key", "Schlüssel des Online-Dienstes: 14-stelliger LeiKa-Schlüssel oder lokaler Schlüssel "
                          "(local:…); „total“ = alle Online-Dienste"),
    Column("leika_key", "LeiKa-/FIM-Leistungsschlüssel, leer bei lokalen Diensten und Summenzeilen"),
    Column("service_name", "Bezeichnung des Online-Dienstes"),
)
_SUPPRESSED = Column("suppressed", "Aus Geheimhaltungsgründen leer gelassene Spalten dieser Zeile, "
                                   "durch Semikolon getrennt (weniger als 3 Fälle oder Rückrechnung möglich)")

DATASETS: dict[str, Dataset] = {d.key: d for d in (
    Dataset(
        "usage", "Nutzung der Online-Dienste",
        "Monatliche Zahl der begonnenen, abgeschickten und abgebrochenen Vorgänge je Online-Dienst.",
        ("Online-Dienste", "OZG", "Nutzung", "Verwaltungsdigitalisierung"),
        (*_SERVICE_COLUMNS,
         Column("started", "Begonnene Vorgänge"),
         Column("submitted", "Abgeschickte Anträge, Anzeigen und Meldungen"),
         Column("aborted", "Abgebrochene Vorgänge"),
         _SUPPRESSED),
    ),
    Dataset(
        "completion", "Abschluss- und Abbruchquoten der Online-Dienste",
        "Monatlicher Anteil der begonnenen Vorgänge, die abgeschickt bzw. abgebrochen wurden, je Online-Dienst.",
        ("Online-Dienste", "Abschlussquote", "Abbruchquote"),
        (*_SERVICE_COLUMNS,
         Column("started", "Begonnene Vorgänge (Nenner der Quoten)"),
         Column("completion_rate", "Abschlussquote: abgeschickt ÷ begonnen, Dezimalzahl 0–1"),
         Column("abandonment_rate", "Abbruchquote: abgebrochen ÷ begonnen, Dezimalzahl 0–1"),
         _SUPPRESSED),
    ),
    Dataset(
        "payment", "Bezahlverfahren in Online-Diensten",
        "Monatliche Zahl der Zahlungen je Online-Dienst und Bezahlverfahren und ihr Anteil.",
        ("Online-Dienste", "E-Payment", "Bezahlverfahren"),
        (*_SERVICE_COLUMNS,
         Column("payment_method", "Bezahlverfahren (paypal, credit_card, sepa_direct_debit, …); "
                                  "„total“ = alle Verfahren"),
         Column("payments", "Zahl der Zahlungen"),
         Column("share", "Anteil an allen Zahlungen des Dienstes im Monat, Dezimalzahl 0–1"),
         _SUPPRESSED),
    ),
    Dataset(
        "authentication", "Anmeldeverfahren in Online-Diensten",
        "Monatliche Zahl der Anmeldungen je Online-Dienst und Anmeldeverfahren (BundID, ELSTER, Online-Ausweis …) "
        "und ihr Anteil.",
        ("Online-Dienste", "BundID", "Authentifizierung"),
        (*_SERVICE_COLUMNS,
         Column("auth_method", "Anmeldeverfahren; „total“ = alle Verfahren"),
         Column("authentications", "Zahl der Anmeldungen"),
         Column("share", "Anteil an allen Anmeldungen des Dienstes im Monat, Dezimalzahl 0–1"),
         _SUPPRESSED),
    ),
    Dataset(
        "satisfaction", "Zufriedenheit mit den Online-Diensten",
        "Monatliche Zahl der Bewertungen (1 bis 5 Sterne) je Online-Dienst und ihr Mittelwert. "
        "Freitext-Kommentare werden nie veröffentlicht.",
        ("Online-Dienste", "Zufriedenheit", "Nutzerfeedback"),
        (*_SERVICE_COLUMNS,
         Column("ratings", "Zahl der Bewertungen"),
         Column("average_rating", "Mittlere Bewertung (1 = schlecht, 5 = sehr gut), zwei Nachkommastellen"),
         _SUPPRESSED),
    ),
)}


def column_names(dataset: str) -> list[str]:
    return [c.name for c in DATASETS[dataset].columns]


# --- reading the rollups (inside the tenant's transaction: RLS applies) -----------------

# Plain constant SQL (no formatting): complete months from :since to the start of :today's month.
_QUERIES = {
    "usage": """SELECT service_key, to_char(date_trunc('month', day), 'YYYY-MM') AS month,
                       sum(started), sum(submitted), sum(aborted)
                FROM analytics.rollup_service_daily
                WHERE tenant_id = :tenant AND day >= :since AND day < date_trunc('month', CAST(:today AS date))
                GROUP BY 1, 2""",
    "payment": """SELECT service_key, to_char(date_trunc('month', day), 'YYYY-MM') AS month,
                         payment_method, sum(payments)
                  FROM analytics.rollup_payment_daily
                  WHERE tenant_id = :tenant AND day >= :since AND day < date_trunc('month', CAST(:today AS date))
                  GROUP BY 1, 2, 3""",
    "authentication": """SELECT service_key, to_char(date_trunc('month', day), 'YYYY-MM') AS month,
                                auth_method, sum(authentications)
                         FROM analytics.rollup_auth_daily
                         WHERE tenant_id = :tenant AND day >= :since
                           AND day < date_trunc('month', CAST(:today AS date))
                         GROUP BY 1, 2, 3""",
    # received_at is an instant: compared on the German wall clock, as the month label is (issue 19).
    "satisfaction": """SELECT service_key,
                              to_char(date_trunc('month', received_at AT TIME ZONE 'Europe/Berlin'), 'YYYY-MM'),
                              count(*), sum(rating)
                       FROM analytics.feedback
                       WHERE tenant_id = :tenant
                         AND (received_at AT TIME ZONE 'Europe/Berlin') >= CAST(:since AS timestamp)
                         AND (received_at AT TIME ZONE 'Europe/Berlin')
                             < date_trunc('month', CAST(:today AS timestamp))
                       GROUP BY 1, 2""",
}

#: How far back the datasets reach.
HISTORY_MONTHS = 36


def _since(today: date) -> date:
    month_index = today.year * 12 + today.month - 1 - HISTORY_MONTHS
    return date(month_index // 12, month_index % 12 + 1, 1)


def _fetch(session: Session, tenant_id: int, query: str, today: date):
    params = {"tenant": tenant_id, "today": today, "since": _since(today)}
    return session.execute(text(_QUERIES[query]), params).all()


def _services(session: Session, tenant_id: int) -> dict[str, tuple[str, str]]:
    rows = session.execute(text(
        "SELECT service_key, coalesce(leika_key, CASE WHEN service_key ~ '^99' THEN service_key END, ''), name "
        "FROM analytics.services WHERE tenant_id = :tenant"), {"tenant": tenant_id})
    return {key: (leika, name) for key, leika, name in rows}


# --- building the protected rows ----------------------------------------------------------


def _ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 4)


class _Rows:
    """Collects output rows; a None value is a withheld cell and is named in ``suppressed``."""

    def __init__(self, services):
        self.services = services
        self.rows = []

    def add(self, service_key: str, month: str, **values):
        leika, name = ("", "Alle Online-Dienste") if service_key == TOTAL else self.services.get(
            service_key, ("", service_key))
        hidden = [k for k, v in values.items() if v is None]
        self.rows.append({"month": month, "service_key": service_key, "leika_key": leika, "service_name": name,
                          **values, "suppressed": ";".join(hidden)})

    def sorted(self):
        return sorted(self.rows, key=lambda r: (r["month"], r["service_key"] == TOTAL, r["service_key"],
                                                tuple(str(v) for v in r.values())))


def _usage_protection(data, rules: Rules) -> Protection:
    """Started, submitted and aborted per service and month, with month totals.

    Started usually equals submitted + aborted + the few still open, so the
    three are modelled as one relation: a hidden "submitted" must not follow
    from "started" minus "aborted".
    """
    atoms, figures, months = {}, [], defaultdict(lambda: defaultdict(set))
    for service, month, started, submitted, aborted in data:
        sub, abo = (service, month, "submitted"), (service, month, "aborted")
        atoms[sub], atoms[abo] = Atom(int(submitted)), Atom(int(aborted))
        rest = int(started) - int(submitted) - int(aborted)
        if rest >= 0:
            atoms[(service, month, "open")] = Atom(rest)
            start_members = {sub, abo, (service, month, "open")}
        else:  # inconsistent source counts: no relation to exploit
            atoms[(service, month, "started")] = Atom(int(started))
            start_members = {(service, month, "started")}
        for measure, members in (("submitted", {sub}), ("aborted", {abo}), ("started", start_members)):
            figures.append(Figure((measure, service, month), frozenset(members)))
            months[month][measure] |= members
    for month, measures in months.items():
        figures += [Figure((measure, TOTAL, month), frozenset(members)) for measure, members in measures.items()]
    return protect(atoms, figures, rules)


def _usage_like(data, rules: Rules):
    protection = _usage_protection(data, rules)
    keys = sorted({(s, m) for s, m, *_ in data}) + sorted({(TOTAL, m) for _, m, *_ in data})
    return protection, keys


def build_usage(data, services, rules: Rules):
    protection, keys = _usage_like(data, rules)
    out = _Rows(services)
    for service, month in keys:
        out.add(service, month, **{m: protection.value((m, service, month))
                                   for m in ("started", "submitted", "aborted")})
    return out.sorted()


def build_completion(data, services, rules: Rules):
    protection, keys = _usage_like(data, rules)
    out = _Rows(services)
    for service, month in keys:
        started = protection.value(("started", service, month))
        out.add(service, month, started=started,
                completion_rate=_ratio(protection.value(("submitted", service, month)), started),
                abandonment_rate=_ratio(protection.value(("aborted", service, month)), started))
    return out.sorted()


def _breakdown_protection(data, rules: Rules) -> Protection:
    """Counts per service, month and category, with the total of each service and month."""
    atoms, groups = {}, defaultdict(set)
    for service, month, category, count in data:
        atoms[(service, month, category)] = Atom(int(count))
        groups[(service, month)].add((service, month, category))
    figures = [Figure(key, frozenset([key])) for key in atoms]
    figures += [Figure((service, month, ALL), frozenset(members)) for (service, month), members in groups.items()]
    return protect(atoms, figures, rules)


def build_breakdown(data, services, rules: Rules, category: str, measure: str):
    protection = _breakdown_protection(data, rules)
    out = _Rows(services)
    for service, month, cat in sorted(protection.published.keys() | protection.suppressed.keys()):
        count = protection.value((service, month, cat))
        total = protection.value((service, month, ALL))
        out.add(service, month, **{category: cat, measure: count, "share": _ratio(count, total)})
    return out.sorted()


def build_satisfaction(data, services, rules: Rules):
    atoms = {(s, m): Atom(int(n)) for s, m, n, _ in data}
    sums = {(s, m): int(total) for s, m, _, total in data}
    months = defaultdict(set)
    for s, m in atoms:
        months[m].add((s, m))
    figures = [Figure(key, frozenset([key])) for key in atoms]
    figures += [Figure((TOTAL, m), frozenset(members)) for m, members in months.items()]
    protection = protect(atoms, figures, rules)
    out = _Rows(services)
    for key in sorted(atoms) + sorted((TOTAL, m) for m in months):
        ratings = protection.value(key)
        members = [key] if key[0] != TOTAL else months[key[1]]
        average = None if not ratings else round(sum(sums[k] for k in members) / ratings, 2)
        out.add(key[0], key[1], ratings=ratings, average_rating=average)
    return out.sorted()


def dataset_rows(session: Session, tenant_id: int, dataset: str, rules: Rules, today: date) -> list[dict]:
    """The protected rows of one dataset for one tenant; call inside ``tenant_transaction(tenant_id)``."""
    services = _services(session, tenant_id)
    if dataset in ("usage", "completion"):
        data = _fetch(session, tenant_id, "usage", today)
        return (build_usage if dataset == "usage" else build_completion)(data, services, rules)
    if dataset == "payment":
        return build_breakdown(_fetch(session, tenant_id, "payment", today), services, rules,
                               "payment_method", "payments")
    if dataset == "authentication":
        return build_breakdown(_fetch(session, tenant_id, "authentication", today), services, rules,
                               "auth_method", "authentications")
    if dataset == "satisfaction":
        return build_satisfaction(_fetch(session, tenant_id, "satisfaction", today), services, rules)
    raise KeyError(dataset)
