"""A year of realistic demo data for the demo tenants, fed through the real ingest paths.

Per tenant: the ten LeiKa services of ``tenants/data/leika_services.csv`` and ten local ones,
with funnels that lose people at plausible steps (uploading documents, paying), seasonality
(dog tax in January, moving house in autumn, bulky waste in spring) and weekday patterns,
payment and authentication mixes (giropay until 2024-12-31, then Wero), app and web channels,
feedback and web visits. Volume grows with the square root of the population.

The data takes the paths real data takes: a canonical CSV through the push source, a civento
statistics export (semicolon, Windows-1252, German dates and numbers) and a Mängelmelder export
through upload sources (``runs.load_file``: spool, batch key, staged load, rollups); feedback
through the same checks as the widget endpoint; web visits in Matomo's JSON shape through the
Matomo connector's parser and store. Seeded by AGS, so it is deterministic; a tenant that
has its demo data already is skipped.
"""

from __future__ import annotations

import csv
import math
import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from tenants.canonical import EVENT_COLUMNS
from tenants.context import tenant_transaction
from tenants.ingest import matomo
from tenants.ingest.catalogue import leika_names
from tenants.ingest.feedback import clean_submission, store_feedback
from tenants.ingest.runs import load_file
from tenants.models import DataSource, IngestRun, Tenant
from tenants.settings import get_settings

BERLIN = ZoneInfo("Europe/Berlin")
MARKER_SOURCE = "Formularserver (Push)"


@dataclass(frozen=True)
class Service:
    key: str
    name: str
    daily: float  # sessions per day for a town of 50,000
    steps: tuple[str, ...]
    fee: bool
    season: tuple[float, ...] = (1,) * 12  # Jan..Dec
    source: str = "events"  # events | civento | maengelmelder


SPRING = (0.7, 0.8, 1.2, 1.5, 1.4, 1.1, 1.0, 0.9, 1.0, 1.1, 0.8, 0.6)
AUTUMN = (0.9, 0.8, 0.9, 1.0, 0.9, 0.9, 1.0, 1.3, 1.5, 1.4, 1.0, 0.7)
JANUARY = (2.2, 1.2, 1.0, 0.9, 0.9, 0.8, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9)
SUMMER = (0.6, 0.7, 0.9, 1.1, 1.3, 1.5, 1.5, 1.3, 1.1, 0.9, 0.7, 0.6)

STEPS = {
    "99008001012000": ("Persönliche Angaben", "Anmelden", "Lichtbild hochladen", "Termin wählen", "Bezahlen"),
    "99027002012000": ("Angaben zur Person", "Anmelden", "Nachweise hochladen", "Bezahlen"),
    "99049001001000": ("Angaben zur Person", "Anmelden", "Verwendungszweck", "Bezahlen"),
    "99050012104000": ("Angaben zum Betrieb", "Anmelden", "Nachweise hochladen", "Bezahlen"),
    "99102013104000": ("Angaben zum Hund", "Anmelden", "Halterangaben", "Bankverbindung"),
    "99107022012000": ("Haushalt", "Anmelden", "Einkommen", "Nachweise hochladen"),
    "99107023037000": ("Haushalt", "Anmelden", "Miete und Einkommen", "Nachweise hochladen"),
    "99108001001000": ("Fahrzeug", "Anmelden", "Fahrzeugschein hochladen", "Bezahlen"),
    "99115003012000": ("Angaben zur Person", "Anmelden", "Bezahlen"),
    "99115005104000": ("Neue Wohnung", "Anmelden", "Wohnungsgeberbestätigung hochladen", "Mitziehende Personen"),
}
RATES = {"99008001012000": 9, "99027002012000": 4, "99049001001000": 5, "99050012104000": 3, "99102013104000": 2,
         "99107022012000": 1.5, "99107023037000": 3, "99108001001000": 4, "99115003012000": 6, "99115005104000": 8}
FEES = {"99008001012000", "99027002012000", "99049001001000", "99050012104000", "99108001001000", "99115003012000"}
SEASONS = {"99102013104000": JANUARY, "99115005104000": AUTUMN, "99108001001000": AUTUMN}
CIVENTO = {"99107022012000", "99107023037000", "99050012104000"}  # delivered as daily counts

LOCAL = [
    ("local:sperrmuell-anmelden", "Sperrmüll anmelden", 6, ("Adresse", "Gegenstände", "Termin wählen"), True, SPRING),
    ("local:maengelmelder", "Mängelmelder", 5, ("Ort wählen", "Foto hochladen", "Beschreibung"), False, SUMMER),
    ("local:kita-platz", "Kita-Platz anmelden", 1.5, ("Kind", "Anmelden", "Wunsch-Kitas", "Nachweise hochladen"),
     False, (1.8, 1.6, 1.2, 1, 0.8, 0.7, 0.6, 0.6, 0.9, 1, 1, 0.9)),
    ("local:veranstaltung-anmelden", "Veranstaltung anmelden", 1, ("Veranstaltung", "Anmelden", "Auflagen"), True,
     SUMMER),
    ("local:sondernutzung", "Sondernutzung öffentlicher Flächen", 0.8, ("Fläche", "Zeitraum", "Bezahlen"), True,
     SUMMER),
    ("local:fundsache", "Fundsache melden", 1.2, ("Gegenstand", "Fundort"), False, SUMMER),
    ("local:baumfaellung", "Baumfällung beantragen", 0.4, ("Grundstück", "Baum", "Fotos hochladen", "Bezahlen"),
     True, (1.6, 1.8, 1.2, 0.6, 0.5, 0.5, 0.5, 0.6, 0.8, 1.3, 1.5, 1.4)),
    ("local:wahlhelfer", "Als Wahlhelfer melden", 0.6, ("Angaben zur Person", "Wahllokal"), False,
     (0.3, 2.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.5, 2.0, 0.5, 0.3, 0.3)),
    ("local:grabstelle", "Grabnutzungsrecht verlängern", 0.5, ("Grabstelle", "Anmelden", "Bezahlen"), True, None),
    ("local:hundekotbeutel", "Hundekotbeutel-Spender melden", 0.7, ("Standort", "Beschreibung"), False, SUMMER),
]

AUTH_MIX = [(("bundid_basis", "basis"), 34), (("bundid_eid", "hoch"), 24), (("bundid_elster", "substanziell"), 16),
            (("none", "none"), 18), (("muk_elster", "substanziell"), 4), (("eu_eid", "hoch"), 2),
            (("other", "basis"), 2)]
PAY_PROVIDER = ["epaybl", "epay21", "pmpayment"]
COMMENTS = [
    "Ging schnell und ohne Behördengang.", "Sehr übersichtlich, danke!", "Das Hochladen der Nachweise hat gehakt.",
    "Die Anmeldung mit dem Ausweis war kompliziert.", "Bitte mehr Zahlungsarten anbieten.",
    "Rückfragen bitte an max.mustermann@example.org", "Hat auf dem Handy nicht gut funktioniert.",
    "Super, endlich online!", "Ich musste lange nach dem Formular suchen.", "Erreichbar unter 0151 2345678",
]


def services() -> list[Service]:
    result = []
    for key, name in leika_names().items():
        result.append(Service(key, name, RATES[key], STEPS[key], key in FEES, SEASONS.get(key, (1,) * 12),
                              "civento" if key in CIVENTO else "events"))
    for key, name, rate, steps, fee, season in LOCAL:
        result.append(Service(key, name, rate, steps, fee, season or (1,) * 12,
                              "maengelmelder" if key == "local:maengelmelder" else "events"))
    return result


def _pick(rng: random.Random, weighted: list[tuple[object, float]]):
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _payment(rng: random.Random, day: date) -> str:
    legacy = day <= date(2024, 12, 31)
    months_since = max(0, (day.year - 2025) * 12 + day.month)
    wero = 0 if legacy else min(12, 2 + months_since)
    mix = [("paypal", 30), ("credit_card", 20), ("sepa_direct_debit", 16), ("invoice", 6), ("on_site", 3),
           ("giropay", 14 if legacy else 0), ("paydirekt", 3 if legacy else 0), ("wero", wero), ("other", 2)]
    return _pick(rng, mix)


def _drop_probability(step: str, position: int) -> float:
    if "hochladen" in step.lower():
        return 0.17
    if step == "Bezahlen":
        return 0.11
    if step == "Anmelden":
        return 0.12
    return 0.04 + 0.01 * position


def _sessions(rng: random.Random, service: Service, day: date, scale: float) -> int:
    weekday = (1.15, 1.1, 1.05, 1.05, 0.95, 0.45, 0.35)[day.weekday()]
    mean = service.daily * scale * service.season[day.month - 1] * weekday
    return max(0, int(rng.gauss(mean, math.sqrt(mean) + 0.5) + 0.5))


def _walk(rng: random.Random, service: Service, day: date, channel_mix) -> tuple[list[tuple], bool]:
    """One session: (event rows without id, submitted?)."""
    start = datetime(day.year, day.month, day.day, tzinfo=BERLIN) + timedelta(
        minutes=int(rng.triangular(6 * 60, 23 * 60, 11 * 60)))
    session, channel = f"{rng.getrandbits(64):016x}", _pick(rng, channel_mix)
    at = start
    rows = [(at, "started", "", "", "", "", "", "")]
    for number, step in enumerate(service.steps, start=1):
        at += timedelta(seconds=rng.randint(20, 240))
        # As docs/data-format.md reads a session: the step is reached, then left there ("aborted" with that
        # step), so a step's abandonments are among those who reached it and the step table adds up.
        rows.append((at, "step_reached", number, step, "", "", "", ""))
        if rng.random() < _drop_probability(step, number):
            rows.append((at + timedelta(seconds=rng.randint(5, 120)), "aborted", number, step, "", "", "", ""))
            return [(session, channel, *r) for r in rows], False
        if step == "Anmelden":
            auth, trust = _pick(rng, AUTH_MIX)
            rows.append((at, "authentication", number, step, "", "", auth, trust))
        if step == "Bezahlen":
            rows.append((at, "payment", number, step, _payment(rng, day), rng.choice(PAY_PROVIDER), "", ""))
    rows.append((at + timedelta(seconds=rng.randint(5, 60)), "submitted", "", "", "", "", "", ""))
    return [(session, channel, *r) for r in rows], True


WEB_ONLY = [("web", 1)]
MIXED = [("web", 86), ("ios", 8), ("android", 6)]
APP_HEAVY = [("web", 18), ("ios", 38), ("android", 44)]


def generate(tenant_ags: str, population: int, days: list[date], out: Path) -> dict:
    """Write the tenant's files into ``out``; return paths and the feedback and web figures."""
    rng = random.Random(int(tenant_ags))
    # sqrt: a city ten times larger does not run ten times the online applications per service
    scale = 0.6 * math.sqrt(max(population, 5_000) / 50_000)
    files = {"events": out / "ereignisse.csv", "civento": out / "civento-statistik.csv",
             "maengelmelder": out / "maengelmelder-export.csv"}
    feedback, web = [], {}
    with files["events"].open("w", encoding="utf-8", newline="") as ev, \
            files["civento"].open("w", encoding="cp1252", newline="") as cv, \
            files["maengelmelder"].open("w", encoding="utf-8", newline="") as mm:
        events, civento, maengel = csv.writer(ev), csv.writer(cv, delimiter=";"), csv.writer(mm, delimiter=";")
        events.writerow(EVENT_COLUMNS)
        civento.writerow(["Datum", "Leistungsschlüssel", "Onlinedienst", "Kanal", "Anträge gestartet",
                          "Anträge abgeschickt", "Anträge abgebrochen"])
        maengel.writerow(["Meldungs-ID", "Zeitpunkt", "Herkunft", "Status", "Schritt", "Schrittbezeichnung"])
        for service in services():
            mix = APP_HEAVY if service.source == "maengelmelder" else MIXED
            for day in days:
                counts = {"started": 0, "submitted": 0, "aborted": 0}
                for _ in range(_sessions(rng, service, day, scale)):
                    walked, submitted = _walk(rng, service, day, WEB_ONLY if service.source == "civento" else mix)
                    _write(service, walked, events, maengel, counts)
                    if submitted and rng.random() < 0.04:
                        feedback.append(_feedback(rng, service, walked[-1][2]))
                if service.source == "civento" and counts["started"]:
                    civento.writerow([day.strftime("%d.%m.%Y"), service.key, service.name, "Web",
                                      f"{counts['started']:,}".replace(",", "."), counts["submitted"],
                                      counts["aborted"]])
        for day in days:
            web[day.isoformat()] = _visits(rng, day, scale)
    return {"files": files, "feedback": feedback, "web": web}


def _write(service: Service, walked: list[tuple], events, maengel, counts: dict) -> None:
    for session, channel, at, kind, step_no, step, pay, provider, auth, trust in walked:
        if kind in counts:
            counts[kind] += 1
        if service.source == "civento":
            continue
        if service.source == "maengelmelder":
            if kind in ("started", "step_reached", "submitted", "aborted"):
                origin = {"web": "Webportal", "ios": "iOS-App", "android": "Android-App"}[channel]
                status = {"started": "begonnen", "step_reached": "Schritt erreicht", "submitted": "abgeschickt",
                          "aborted": "abgebrochen"}[kind]
                maengel.writerow([f"M-{session[:10]}", at.strftime("%d.%m.%Y %H:%M"), origin, status, step_no, step])
            continue
        events.writerow(["", at.isoformat(timespec="seconds"), service.key, session, kind, step_no, step, channel,
                         pay, provider if pay else "", auth, trust])


def _feedback(rng: random.Random, service: Service, at: datetime) -> dict:
    rating = _pick(rng, [(5, 44), (4, 30), (3, 12), (2, 7), (1, 7)])
    comment = rng.choice(COMMENTS) if rng.random() < 0.3 else None
    return {"service_key": service.key, "rating": rating, "comment": comment, "received_at": at}


def _visits(rng: random.Random, day: date, scale: float) -> dict:
    weekday = (1.1, 1.1, 1.0, 1.0, 0.9, 0.55, 0.5)[day.weekday()]
    visits = int(rng.gauss(900, 60) * scale * weekday)
    bounce = rng.uniform(35, 55)
    return {"nb_uniq_visitors": int(visits * 0.8), "nb_visits": visits, "nb_actions": int(visits * 3.1),
            "bounce_rate": f"{bounce:.0f}%", "avg_time_on_site": rng.randint(120, 200)}


def _pages(rng: random.Random, web: dict, base_url: str) -> dict:
    report = {}
    for day, visits in web.items():
        report[day] = [{"label": f"/buergerservice/{slug}", "url": f"{base_url}/buergerservice/{slug}",
                        "nb_visits": max(1, int(visits["nb_visits"] * share)),
                        "nb_hits": max(1, int(visits["nb_visits"] * share * 1.3)),
                        "bounce_rate": f"{rng.uniform(20, 50):.0f}%", "avg_time_on_page": rng.randint(30, 120)}
                       for slug, share in (("hundesteuer", 0.02), ("anwohnerparken", 0.03),
                                           ("wohnsitz-anmelden", 0.05), ("sperrmuell", 0.04))]
    return report


PAGES = [("hundesteuer", "99102013104000"), ("anwohnerparken", "99108001001000"),
         ("wohnsitz-anmelden", "99115005104000"), ("sperrmuell", "local:sperrmuell-anmelden")]


def _slug(name: str) -> str:
    first = name.split()[0].lower().rstrip(",")
    for umlaut, plain in (("ß", "ss"), ("ö", "oe"), ("ü", "ue"), ("ä", "ae")):
        first = first.replace(umlaut, plain)
    return first


def _sources(session, tenant: Tenant) -> dict[str, int]:

    from tenants.ingest.sources import create_source

    settings = get_settings()
    slug = _slug(tenant.name)
    base = f"https://www.{slug}.example"
    made = {
        "events": create_source(session, tenant.id, settings, MARKER_SOURCE, "push"),
        "civento": create_source(session, tenant.id, settings, "civento Statistik", "upload", "civento"),
        "maengelmelder": create_source(session, tenant.id, settings, "Mängelmelder", "upload", "maengelmelder"),
        "matomo": create_source(session, tenant.id, settings, "Matomo Stadtportal", "matomo", matomo={
            "url": f"https://statistik.{slug}.example", "site_id": "1", "token": "demo0view0only0token",
            "pages": "\n".join(f"{base}/buergerservice/{p} {k}" for p, k in PAGES)}),
        "feedback": create_source(session, tenant.id, settings, "Zufriedenheit", "feedback", origins=base),
    }
    session.execute(text(
        "INSERT INTO analytics.services (tenant_id, service_key, leika_key, name, source_system) "
        "VALUES (:t, :k, :l, :n, :s) ON CONFLICT DO NOTHING"
    ), [{"t": tenant.id, "k": s.key, "l": s.key if s.key.startswith("99") else None, "n": s.name,
         "s": {"events": "Formularserver", "civento": "civento", "maengelmelder": "Mängelmelder"}[s.source]}
        for s in services()])
    return {name: source.id for name, source in made.items()} | {"base_url": base}


def _has_demo_data(tenant_id: int) -> bool:
    with tenant_transaction(tenant_id) as session:
        return session.scalar(select(IngestRun.id).join(
            DataSource, (DataSource.tenant_id == IngestRun.tenant_id) & (DataSource.id == IngestRun.data_source_id)
        ).where(DataSource.name == MARKER_SOURCE, IngestRun.status == "succeeded").limit(1)) is not None


def demo_period(today: date, days: int) -> list[date]:
    """The demo's days: ``days`` back up to yesterday, from the first day of that month for a demo of a
    month or more. A demo that began mid-month showed a first month of a few days' counts in every trend
    (a line starting near 0) and in the comparisons; a short test demo keeps its few days."""
    first = today - timedelta(days=days)
    if days >= 28:
        first = first.replace(day=1)
    return [first + timedelta(days=n) for n in range((today - first).days)]


def seed_tenant(tenant_id: int, today: date | None = None, days: int = 365) -> dict:
    """Generate and load a year of demo data for one tenant; returns what was loaded."""
    if _has_demo_data(tenant_id):
        return {"skipped": True}
    period = demo_period(today or datetime.now(UTC).date(), days)
    with tenant_transaction(tenant_id) as session:
        tenant = session.get(Tenant, tenant_id)
        ags, population, name = tenant.ags, tenant.region.population, tenant.name
        existing = {s.name: s.id for s in session.scalars(select(DataSource))}
        ids = _sources(session, tenant) if MARKER_SOURCE not in existing else None
    if ids is None:  # sources from an interrupted earlier seed
        ids = {"events": existing[MARKER_SOURCE], "civento": existing["civento Statistik"],
               "maengelmelder": existing["Mängelmelder"], "matomo": existing["Matomo Stadtportal"],
               "feedback": existing["Zufriedenheit"],
               "base_url": f"https://www.{_slug(name)}.example"}
    loaded = {}
    with tempfile.TemporaryDirectory(prefix="egov-demo-") as tmp:
        data = generate(ags, population, period, Path(tmp))
        for kind in ("civento", "maengelmelder", "events"):  # the marker source last: a re-run resumes
            run, outcome = load_file(tenant_id, ids[kind], data["files"][kind], requested_by="demo")
            loaded[kind] = run.rows_accepted
    with tenant_transaction(tenant_id) as session:
        for item in data["feedback"]:
            submission = clean_submission(item)
            store_feedback(session, tenant_id, ids["feedback"], submission, received_at=item["received_at"])
        visits = matomo.visits_rows(data["web"])
        pages_report = _pages(random.Random(ags), data["web"], ids["base_url"])
        pages = matomo.page_rows(pages_report, session.get(DataSource, (tenant_id, ids["matomo"])).config["pages"])
        count = matomo.store(session, tenant_id, ids["matomo"], visits, pages,
                             matomo.complete_days(data["web"], pages_report))
        run = matomo.create_pull_run(session, tenant_id, ids["matomo"], period[0], period[-1], "demo")
        run.status, run.rows_total, run.rows_accepted, run.finished_at = "succeeded", count, count, datetime.now(UTC)
    loaded["feedback"], loaded["web_days"] = len(data["feedback"]), len(visits)
    return loaded
