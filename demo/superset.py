"""Demo figures in the rollup tables, so the dashboards have something to show.

The Superset tests and benchmark write plausible daily figures directly into
the rollups (``make up`` loads the demo tenants through the ingest paths). Deterministic for a
given seed; ``scale`` makes tenants easy to tell apart in tests.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import text

SERVICES = [
    ("99050012104000", "Hundesteuer-Anmeldung"),
    ("99108014001000", "Anwohnerparkausweis"),
    ("99115005001000", "Gewerbeanmeldung"),
    ("99115001001000", "Wohnsitz-Anmeldung"),
]
STEPS = ["Start", "Angaben zur Person", "Nachweise", "Bezahlung", "Absenden"]
# The canonical codes of tenants/canonical.py (the analytics tables CHECK them).
PAYMENTS = [("paypal", "epaybl"), ("wero", "epaybl"), ("credit_card", "epaybl"), ("sepa_direct_debit", "")]
AUTHS = [("bundid_basis", "basis"), ("bundid_eid", "hoch"), ("bundid_elster", "substanziell"), ("none", "none")]
CHANNELS = ["web", "ios", "android"]


def _rows(tenant_id: int, days: int, scale: int, rng: random.Random, end: date):
    for offset in range(days):
        day = end - timedelta(days=offset)
        for key, _name in SERVICES:
            started = rng.randint(5, 20) * scale
            reached = [started]
            for _ in STEPS[1:]:
                reached.append(int(reached[-1] * rng.uniform(0.75, 0.95)))
            submitted, aborted = reached[-1], started - reached[-1]
            yield "service", {"t": tenant_id, "k": key, "d": day, "s": started, "sub": submitted, "a": aborted}
            for number, (name, count) in enumerate(zip(STEPS, reached, strict=True), start=1):
                lost = count - (reached[number] if number < len(reached) else count)
                yield "step", {"t": tenant_id, "k": key, "d": day, "n": number, "name": name, "r": count, "a": lost}
            for method, provider in PAYMENTS:
                yield "payment", {"t": tenant_id, "k": key, "d": day, "m": method, "p": provider,
                                  "c": int(submitted * rng.uniform(0.05, 0.4))}
            for method, level in AUTHS:
                yield "auth", {"t": tenant_id, "k": key, "d": day, "m": method, "l": level,
                               "c": int(started * rng.uniform(0.05, 0.5))}
            for channel, share in zip(CHANNELS, (0.7, 0.2, 0.1), strict=True):
                yield "channel", {"t": tenant_id, "k": key, "d": day, "c": channel, "s": int(started * share),
                                  "sub": int(submitted * share), "a": int(aborted * share)}
            for _ in range(rng.randint(0, 2)):
                yield "feedback", {"t": tenant_id, "k": key, "d": day, "r": rng.choice([2, 3, 4, 4, 5, 5])}
            yield "page", {"t": tenant_id, "k": key, "d": day, "u": f"/dienste/{key}", "h": started * 3,
                           "v": started * 2}
        yield "visits", {"t": tenant_id, "d": day, "v": 400 * scale + rng.randint(0, 50 * scale),
                         "a": 1200 * scale, "b": round(rng.uniform(30, 60), 2)}


SQL = {
    "service": "INSERT INTO analytics.rollup_service_daily (tenant_id, service_key, day, started, submitted, aborted) "
               "VALUES (:t, :k, :d, :s, :sub, :a) ON CONFLICT DO NOTHING",
    "step": "INSERT INTO analytics.rollup_step_daily (tenant_id, service_key, day, step_no, step_name, reached, "
            "aborted) VALUES (:t, :k, :d, :n, :name, :r, :a) ON CONFLICT DO NOTHING",
    "payment": "INSERT INTO analytics.rollup_payment_daily (tenant_id, service_key, day, payment_method, "
               "payment_provider, payments) VALUES (:t, :k, :d, :m, :p, :c) ON CONFLICT DO NOTHING",
    "auth": "INSERT INTO analytics.rollup_auth_daily (tenant_id, service_key, day, auth_method, trust_level, "
            "authentications) VALUES (:t, :k, :d, :m, :l, :c) ON CONFLICT DO NOTHING",
    "channel": "INSERT INTO analytics.rollup_channel_daily (tenant_id, service_key, day, channel, started, submitted, "
               "aborted) VALUES (:t, :k, :d, :c, :s, :sub, :a) ON CONFLICT DO NOTHING",
    "feedback": "INSERT INTO analytics.feedback (tenant_id, service_key, received_at, rating) "
                "VALUES (:t, :k, :d + time '12:00', :r)",
    "visits": "INSERT INTO analytics.web_visits_daily (tenant_id, data_source_id, day, visits, actions, bounce_rate) "
              "VALUES (:t, 0, :d, :v, :a, :b) ON CONFLICT DO NOTHING",
    "page": "INSERT INTO analytics.web_pages_daily (tenant_id, data_source_id, day, page_url, service_key, hits, "
            "visits) VALUES (:t, 0, :d, :u, :k, :h, :v) ON CONFLICT DO NOTHING",
}


def seed_rollups(session, tenant_id: int, days: int = 365, scale: int = 1, seed: int = 1,
                 end: date | None = None) -> int:
    """Write ``days`` days of figures for the tenant (inside its tenant transaction); returns the row count."""
    for key, name in SERVICES:
        session.execute(text("INSERT INTO analytics.services (tenant_id, service_key, leika_key, name) "
                             "VALUES (:t, :k, :l, :n) ON CONFLICT DO NOTHING"),
                        {"t": tenant_id, "k": key, "l": key, "n": name})
    batches: dict[str, list[dict]] = {kind: [] for kind in SQL}
    for kind, row in _rows(tenant_id, days, scale, random.Random(seed), end or date.today()):
        batches[kind].append(row)
    for kind, rows in batches.items():
        if rows:
            session.execute(text(SQL[kind]), rows)
    return sum(len(rows) for rows in batches.values())
