"""The compared metrics and how one tenant's values are computed from its own rollups.

Everything here runs inside ``tenant_transaction(tenant_id)``: RLS decides
what is read, and the same function computes the values the refresh job
compares and the own values the tenant's page shows, so both always agree.

Services are compared by LeiKa key only (a local service has no counterpart
elsewhere). Months are complete calendar months of the last
:data:`HISTORY_MONTHS`; the running month is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenants.benchmark.aggregate import Value

HISTORY_MONTHS = 36

#: Metric families a tenant opts into separately.
FAMILIES = ("usage", "payment", "authentication", "satisfaction")


@dataclass(frozen=True)
class Metric:
    key: str
    family: str
    label: str  # German
    unit: str  # "rate" (0–1), "per_1000", "rating"
    higher_is_better: bool | None = None


BASE_METRICS = (
    Metric("usage_per_1000", "usage", "Abgeschickte Anträge je 1.000 Einwohner", "per_1000", True),
    Metric("completion_rate", "usage", "Abschlussquote (abgeschickt ÷ begonnen)", "rate", True),
    Metric("abandonment_rate", "usage", "Abbruchquote (abgebrochen ÷ begonnen)", "rate", False),
    Metric("satisfaction", "satisfaction", "Zufriedenheit (mittlere Bewertung 1–5)", "rating", True),
)
#: The categorical metric: the step where most abandon.
ABANDON_STEP = Metric("abandon_step", "usage", "Schritt mit den meisten Abbrüchen", "label")

PAYMENT_LABELS = {
    "paypal": "PayPal", "credit_card": "Kreditkarte", "sepa_direct_debit": "SEPA-Lastschrift",
    "giropay": "giropay", "paydirekt": "paydirekt", "wero": "Wero", "invoice": "Rechnung",
    "cash": "Bar/vor Ort", "on_site": "Bar/vor Ort", "free_of_charge": "kostenfrei", "other": "Sonstige",
    "unknown": "unbekannt",
}
AUTH_LABELS = {
    "none": "ohne Anmeldung", "guest": "ohne Anmeldung", "bundid_basis": "BundID Basisregistrierung",
    "bundid_elster": "BundID mit ELSTER-Zertifikat", "bundid_eid": "BundID mit Online-Ausweis",
    "eu_eid": "EU-eID", "muk_elster": "Mein Unternehmenskonto", "other_portal_account": "anderes Servicekonto",
    "other": "anderes Verfahren", "unknown": "unbekannt",
}
TRUST_LABELS = {"none": "keines", "basis": "basis", "substanziell": "substanziell", "hoch": "hoch",
                "unknown": "unbekannt"}


@lru_cache(maxsize=4096)
def metric_for(key: str) -> Metric:
    """The metric behind a key, including the share metrics named after a method or level."""
    for metric in (*BASE_METRICS, ABANDON_STEP):
        if metric.key == key:
            return metric
    prefix, _, name = key.partition(":")
    if prefix == "payment":
        return Metric(key, "payment", f"Anteil {PAYMENT_LABELS.get(name, name)} an den Zahlungen", "rate")
    if prefix == "auth":
        return Metric(key, "authentication", f"Anteil {AUTH_LABELS.get(name, name)} an den Anmeldungen", "rate")
    if prefix == "trust":
        return Metric(key, "authentication", f"Anteil Vertrauensniveau „{TRUST_LABELS.get(name, name)}“", "rate")
    raise KeyError(key)


def published_metrics() -> list[Metric]:
    """Every metric the refresh can publish, in display order (the Superset dataset labels them from this).

    Share metrics are named after the canonical vocabularies the analytics tables CHECK, plus
    ``unknown`` for rows without a method or level.
    """
    from ingest_workers.canonical import AUTH_METHODS, PAYMENT_METHODS, TRUST_LEVELS

    shares = {"payment": {*PAYMENT_METHODS, *PAYMENT_LABELS}, "auth": {*AUTH_METHODS, *AUTH_LABELS},
              "trust": {*TRUST_LEVELS, *TRUST_LABELS}}
    keys = [m.key for m in (*BASE_METRICS, ABANDON_STEP)]
    keys += [f"{prefix}:{name}" for prefix, names in shares.items() for name in sorted(names | {"unknown"})]
    return [metric_for(key) for key in keys]


def since(today: date) -> date:
    index = today.year * 12 + today.month - 1 - HISTORY_MONTHS
    return date(index // 12, index % 12 + 1, 1)


# LeiKa key of a rollup row: the service key itself when it is one, else the catalogue's leika_key.
_LEIKA = ("CASE WHEN length(r.service_key) = 14 AND left(r.service_key, 2) = '99' THEN r.service_key "
          "ELSE s.leika_key END")
_JOIN = "LEFT JOIN analytics.services s ON s.tenant_id = r.tenant_id AND s.service_key = r.service_key"
_WINDOW = "r.tenant_id = :tenant AND r.day >= :since AND r.day < date_trunc('month', CAST(:today AS date))"
_MONTH = "date_trunc('month', r.day)::date"
# A share within its service and month, and that total (window over the grouped rows).
_SHARE = ("coalesce(sum({x})::float8 / nullif(sum(sum({x})) OVER (PARTITION BY {leika}, {month}), 0), 0), "
          "sum(sum({x})) OVER (PARTITION BY {leika}, {month})")
_PAYMENT_SHARE = _SHARE.format(x="r.payments", leika=_LEIKA, month=_MONTH)
_AUTH_SHARE = _SHARE.format(x="r.authentications", leika=_LEIKA, month=_MONTH)

# Constant SQL; only bound parameters vary.
_QUERIES = {
    "usage": f"SELECT {_LEIKA}, {_MONTH}, sum(r.started), sum(r.submitted), sum(r.aborted) "  # noqa: S608 - constant fragments
             f"FROM analytics.rollup_service_daily r {_JOIN} WHERE {_WINDOW} GROUP BY 1, 2",
    "steps": f"SELECT {_LEIKA}, {_MONTH}, r.step_no, max(r.step_name), sum(r.aborted) "  # noqa: S608 - constant fragments
             f"FROM analytics.rollup_step_daily r {_JOIN} WHERE {_WINDOW} GROUP BY 1, 2, 3",
    # Shares are computed here: (leika, month, category, share, total of the service and month).
    "payment": f"SELECT {_LEIKA}, {_MONTH}, r.payment_method, {_PAYMENT_SHARE} "  # noqa: S608
               f"FROM analytics.rollup_payment_daily r {_JOIN} WHERE {_WINDOW} GROUP BY 1, 2, 3",
    "auth": f"SELECT {_LEIKA}, {_MONTH}, r.auth_method, {_AUTH_SHARE} "  # noqa: S608
            f"FROM analytics.rollup_auth_daily r {_JOIN} WHERE {_WINDOW} GROUP BY 1, 2, 3",
    "trust": f"SELECT {_LEIKA}, {_MONTH}, coalesce(nullif(r.trust_level, ''), 'unknown'), "  # noqa: S608
             f"{_AUTH_SHARE} "
             f"FROM analytics.rollup_auth_daily r {_JOIN} WHERE {_WINDOW} GROUP BY 1, 2, 3",
    "feedback": "SELECT CASE WHEN length(f.service_key) = 14 AND left(f.service_key, 2) = '99' "
                "THEN f.service_key ELSE s.leika_key END, "
                "date_trunc('month', f.received_at AT TIME ZONE 'Europe/Berlin')::date, count(*), sum(f.rating) "
                "FROM analytics.feedback f LEFT JOIN analytics.services s "
                "ON s.tenant_id = f.tenant_id AND s.service_key = f.service_key "
                "WHERE f.tenant_id = :tenant AND f.received_at >= :since "
                "AND f.received_at < date_trunc('month', CAST(:today AS date)) GROUP BY 1, 2",
}


@dataclass
class TenantValues:
    """One tenant's values: (leika, month, metric) -> Value, and (leika, month) -> (worst step, base)."""

    values: dict
    steps: dict


def _ratio(part, whole) -> float:
    return float(part) / float(whole) if whole else 0.0


def _shares(rows, prefix: str, values: dict) -> None:
    for leika, month, name, share, total in rows:
        values[(leika, month, f"{prefix}:{name or 'unknown'}")] = Value(share, int(total))


def tenant_values(session: Session, tenant_id: int, population: int, today: date,
                  families: tuple[str, ...] = FAMILIES) -> TenantValues:
    """Compute one tenant's metric values; call inside ``tenant_transaction(tenant_id)``."""
    params = {"tenant": tenant_id, "since": since(today), "today": today}

    def fetch(name):
        return [row for row in session.execute(text(_QUERIES[name]), params).all() if row[0]]

    values: dict = {}
    steps: dict = {}
    if "usage" in families:
        for leika, month, started, submitted, aborted in fetch("usage"):
            started, submitted, aborted = int(started), int(submitted), int(aborted)
            per_1000 = submitted * 1000 / population if population else 0.0
            values[(leika, month, "usage_per_1000")] = Value(per_1000, submitted)
            values[(leika, month, "completion_rate")] = Value(_ratio(submitted, started), started)
            values[(leika, month, "abandonment_rate")] = Value(_ratio(aborted, started), started)
        worst: dict = {}
        for leika, month, step_no, step_name, aborted in fetch("steps"):
            total, best = worst.get((leika, month), (0, (-1, 0, "")))
            candidate = (int(aborted), -int(step_no), f"{step_no}. {step_name}".strip(" ."))
            worst[(leika, month)] = (total + int(aborted), max(best, candidate))
        steps = {key: (best[2], total) for key, (total, best) in worst.items() if best[0] > 0}
    if "payment" in families:
        _shares(fetch("payment"), "payment", values)
    if "authentication" in families:
        _shares(fetch("auth"), "auth", values)
        _shares(fetch("trust"), "trust", values)
    if "satisfaction" in families:
        for leika, month, ratings, total in fetch("feedback"):
            values[(leika, month, "satisfaction")] = Value(_ratio(total, ratings), int(ratings))
    return TenantValues(values, steps)
