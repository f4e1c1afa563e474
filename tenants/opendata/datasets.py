"""The Open Data datasets: what each contains, and how its rows are built from the rollups.

Every dataset is monthly, per online service, for complete months only (the
running month changes daily and would make every download a moving target).
Each has rows per service and month plus total rows. All datasets of a tenant
are protected together (:func:`protect_release`), because a reader combines
them: the confidentiality rules (tenants/confidentiality.py) first, then the
independent disclosure audit (tenants/opendata/audit.py) decides what more must
be withheld, and nothing is released unless its final report is clean. A rate
or share is published only when every count it is computed from is.

Column meanings are in :data:`DATASETS` (German, shown on the public page) and
in docs/open-data.md; the method in docs/confidentiality.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenants.confidentiality import REASON_SECONDARY, Atom, Figure, Protection, Rules, protect
from tenants.months import month_start
from tenants.opendata.audit import (
    NARROW,
    PUBLISHED_SMALL,
    UNSOLVED,
    USAGE_MEASURES,
    AuditError,
    Auditor,
    Finding,
    Quantity,
    Report,
    TenantData,
)

log = logging.getLogger(__name__)

#: service_key of the rows that add up all services of a month.
TOTAL = "total"
#: The category of the rows that add up all methods of a service and month.
ALL = "total"


@dataclass(frozen=True)
class Column:
    name: str  # the file's column name (stable: programs read it)
    description: str  # German, for the public page and the JSON metadata
    label: str  # a short German heading, for the preview on the public page


@dataclass(frozen=True)
class Dataset:
    key: str
    title: str
    description: str
    keywords: tuple[str, ...]
    columns: tuple[Column, ...]


_SERVICE_COLUMNS = (
    Column("month", "Berichtsmonat (JJJJ-MM)", label="Monat"),
    Column("service_key", "Schlüssel des Online-Dienstes: 14-stelliger LeiKa-Schlüssel oder lokaler Schlüssel "
                          "(local:…); „total“ = alle Online-Dienste", label="Dienstschlüssel"),
    Column("leika_key", "LeiKa-/FIM-Leistungsschlüssel, leer bei lokalen Diensten und Summenzeilen",
           label="LeiKa-Schlüssel"),
    Column("service_name", "Bezeichnung des Online-Dienstes", label="Online-Dienst"),
)
_SUPPRESSED = Column("suppressed", "Aus Geheimhaltungsgründen leer gelassene Spalten dieser Zeile, "
                                   "durch Semikolon getrennt (weniger als 3 Fälle oder Rückrechnung möglich)",
                     label="Zurückgehalten")

DATASETS: dict[str, Dataset] = {d.key: d for d in (
    Dataset(
        "usage", "Nutzung der Online-Dienste",
        "Monatliche Zahl der begonnenen, abgeschickten und abgebrochenen Vorgänge je Online-Dienst.",
        ("Online-Dienste", "OZG", "Nutzung", "Verwaltungsdigitalisierung"),
        (*_SERVICE_COLUMNS,
         Column("started", "Begonnene Vorgänge", label="Begonnen"),
         Column("submitted", "Abgeschickte Anträge, Anzeigen und Meldungen", label="Abgeschickt"),
         Column("aborted", "Abgebrochene Vorgänge", label="Abgebrochen"),
         _SUPPRESSED),
    ),
    Dataset(
        "completion", "Abschluss- und Abbruchquoten der Online-Dienste",
        "Monatlicher Anteil der begonnenen Vorgänge, die abgeschickt bzw. abgebrochen wurden, je Online-Dienst.",
        ("Online-Dienste", "Abschlussquote", "Abbruchquote"),
        (*_SERVICE_COLUMNS,
         Column("started", "Begonnene Vorgänge (Nenner der Quoten)", label="Begonnen"),
         Column("completion_rate", "Abschlussquote: abgeschickt ÷ begonnen, Dezimalzahl 0–1", label="Abschlussquote"),
         Column("abandonment_rate", "Abbruchquote: abgebrochen ÷ begonnen, Dezimalzahl 0–1", label="Abbruchquote"),
         _SUPPRESSED),
    ),
    Dataset(
        "payment", "Bezahlverfahren in Online-Diensten",
        "Monatliche Zahl der Zahlungen je Online-Dienst und Bezahlverfahren und ihr Anteil.",
        ("Online-Dienste", "E-Payment", "Bezahlverfahren"),
        (*_SERVICE_COLUMNS,
         Column("payment_method", "Bezahlverfahren (paypal, credit_card, sepa_direct_debit, …); "
                                  "„total“ = alle Verfahren", label="Bezahlverfahren"),
         Column("payments", "Zahl der Zahlungen", label="Zahlungen"),
         Column("share", "Anteil an allen Zahlungen des Dienstes im Monat, Dezimalzahl 0–1", label="Anteil"),
         _SUPPRESSED),
    ),
    Dataset(
        "authentication", "Anmeldeverfahren in Online-Diensten",
        "Monatliche Zahl der Anmeldungen je Online-Dienst und Anmeldeverfahren (BundID, ELSTER, Online-Ausweis …) "
        "und ihr Anteil.",
        ("Online-Dienste", "BundID", "Authentifizierung"),
        (*_SERVICE_COLUMNS,
         Column("auth_method", "Anmeldeverfahren; „total“ = alle Verfahren", label="Anmeldeverfahren"),
         Column("authentications", "Zahl der Anmeldungen", label="Anmeldungen"),
         Column("share", "Anteil an allen Anmeldungen des Dienstes im Monat, Dezimalzahl 0–1", label="Anteil"),
         _SUPPRESSED),
    ),
    Dataset(
        "satisfaction", "Zufriedenheit mit den Online-Diensten",
        "Monatliche Zahl der Bewertungen (1 bis 5 Sterne) je Online-Dienst und ihr Mittelwert. "
        "Freitext-Kommentare werden nie veröffentlicht.",
        ("Online-Dienste", "Zufriedenheit", "Nutzerfeedback"),
        (*_SERVICE_COLUMNS,
         Column("ratings", "Zahl der Bewertungen", label="Bewertungen"),
         Column("average_rating", "Mittlere Bewertung (1 = schlecht, 5 = sehr gut), zwei Nachkommastellen",
                label="Mittlere Bewertung"),
         _SUPPRESSED),
    ),
)}


#: Every column's short German heading by its name (a name means the same in every dataset).
COLUMN_LABELS = {column.name: column.label for dataset in DATASETS.values() for column in dataset.columns}


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


def _fetch(session: Session, tenant_id: int, query: str, today: date):
    params = {"tenant": tenant_id, "today": today, "since": month_start(today, HISTORY_MONTHS)}
    return session.execute(text(_QUERIES[query]), params).all()


def _services(session: Session, tenant_id: int) -> dict[str, tuple[str, str]]:
    rows = session.execute(text(
        "SELECT service_key, coalesce(leika_key, CASE WHEN service_key ~ '^99' THEN service_key END, ''), name "
        "FROM analytics.services WHERE tenant_id = :tenant"), {"tenant": tenant_id})
    return {key: (leika, name) for key, leika, name in rows}


def tenant_data(session: Session, tenant_id: int, today: date) -> TenantData:
    """The true counts of the complete months every dataset is built from (inside the tenant's transaction)."""
    return TenantData(
        usage=[(s, m, int(st), int(su), int(ab)) for s, m, st, su, ab in _fetch(session, tenant_id, "usage", today)],
        breakdowns={table: [(s, m, category, int(n)) for s, m, category, n in _fetch(session, tenant_id, table, today)]
                    for table in BREAKDOWN_TABLES},
        ratings=[(s, m, int(n), int(total)) for s, m, n, total in _fetch(session, tenant_id, "satisfaction", today)])


# --- protecting every dataset of a tenant together ----------------------------------------------


#: The breakdown datasets: dataset -> (category column, count column).
BREAKDOWN_TABLES = {"payment": ("payment_method", "payments"), "authentication": ("auth_method", "authentications")}


def _usage_figures(data) -> tuple[dict, list[Figure]]:
    """Started, submitted and aborted per service and month, with month totals: (atoms, figures).

    Started equals submitted + aborted + the ones still open, so the three are modelled as one
    relation: a hidden "submitted" must not follow from "started" minus "aborted". An open count
    of 0 hides nothing (and a month whose totals add up shows every reader that all are 0), so it
    is no atom of its own: started is then exactly submitted + aborted.
    """
    atoms, figures, months = {}, [], defaultdict(lambda: defaultdict(set))
    for service, month, started, submitted, aborted in data:
        sub, abo = (service, month, "submitted"), (service, month, "aborted")
        atoms[sub], atoms[abo] = Atom(int(submitted)), Atom(int(aborted))
        rest = int(started) - int(submitted) - int(aborted)
        if rest > 0:
            atoms[(service, month, "open")] = Atom(rest)
            start_members = {sub, abo, (service, month, "open")}
        elif rest == 0:
            start_members = {sub, abo}
        else:  # inconsistent source counts: no relation to exploit
            atoms[(service, month, "started")] = Atom(int(started))
            start_members = {(service, month, "started")}
        for measure, members in (("submitted", {sub}), ("aborted", {abo}), ("started", start_members)):
            figures.append(Figure((measure, service, month), frozenset(members)))
            months[month][measure] |= members
    for month, measures in months.items():
        figures += [Figure((measure, TOTAL, month), frozenset(members)) for measure, members in measures.items()]
    return atoms, figures


def _breakdown_figures(data) -> tuple[dict, list[Figure]]:
    """Counts per service, month and category, with the total of each service and month: (atoms, figures)."""
    atoms, groups = {}, defaultdict(set)
    for service, month, category, count in data:
        atoms[(service, month, category)] = Atom(int(count))
        groups[(service, month)].add((service, month, category))
    figures = [Figure(key, frozenset([key])) for key in atoms]
    figures += [Figure((service, month, ALL), frozenset(members)) for (service, month), members in groups.items()]
    return atoms, figures


def _satisfaction_figures(data) -> tuple[dict, list[Figure]]:
    """Number of ratings per service and month, with month totals: (atoms, figures)."""
    atoms = {(s, m): Atom(int(n)) for s, m, n, _ in data}
    months = defaultdict(set)
    for s, m in atoms:
        months[m].add((s, m))
    figures = [Figure(key, frozenset([key])) for key in atoms]
    figures += [Figure((TOTAL, m), frozenset(members)) for m, members in months.items()]
    return atoms, figures


def _figures(data: TenantData) -> dict[str, tuple[dict, list[Figure]]]:
    """The counts every dataset would show, as atoms and figures for :func:`tenants.confidentiality.protect`."""
    return {"usage": _usage_figures(data.usage),
            **{table: _breakdown_figures(data.breakdowns.get(table, [])) for table in BREAKDOWN_TABLES},
            "satisfaction": _satisfaction_figures(data.ratings)}


def _kept(atoms: dict, figures: list[Figure], withheld: dict) -> Protection:
    """The figures with decisions taken before: withheld ones with their reason, the others with their value."""
    found = Protection()
    for figure in figures:
        if figure.key in withheld:
            found.suppressed[figure.key] = withheld[figure.key]
        else:
            found.published[figure.key] = sum(atoms[m].value for m in figure.members)
    return found


def _figure_key(quantity: Quantity) -> tuple[str, tuple]:
    """Which protection holds a count of the public tables, and its key there."""
    if quantity.table == "usage":
        return "usage", (quantity.measure, quantity.service, quantity.month)
    if quantity.table == "satisfaction":
        return "satisfaction", (quantity.service, quantity.month)
    return quantity.table, (quantity.service, quantity.month, quantity.measure)


def _month_of(table: str, key: tuple) -> str:
    return key[2] if table == "usage" else key[1]


@dataclass
class Release:
    """Every dataset of one tenant, protected together, and the audit report that cleared it.

    Together because a reader combines them: payments follow applications, so the payment table
    can reveal a withheld usage count (issue 14). ``protections`` holds the decision for each count:
    ``usage`` ((measure, service, month)), ``payment`` and ``authentication`` ((service, month,
    category)), ``satisfaction`` ((service, month)); the rows of every dataset are rendered from it.
    """

    data: TenantData
    services: dict
    protections: dict[str, Protection]
    report: Report | None = None
    #: table -> month -> the keys of its counts (rendering one month must not walk all months).
    keys: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.rating_sums = {(s, m): total for s, m, _, total in self.data.ratings}
        for table, protection in self.protections.items():
            by_month = self.keys[table] = defaultdict(list)
            for key in sorted(protection.published.keys() | protection.suppressed.keys(), key=repr):
                by_month[_month_of(table, key)].append(key)

    def month_keys(self, table: str, month: str | None) -> list:
        found = self.keys[table]
        return [k for m in sorted(found) for k in found[m]] if month is None else found.get(month, [])

    def rows(self, dataset: str, month: str | None = None) -> list[dict]:
        if dataset in ("usage", "completion"):
            return _usage_rows(self, month, completion=dataset == "completion")
        if dataset in BREAKDOWN_TABLES:
            return _breakdown_rows(self, dataset, month)
        if dataset == "satisfaction":
            return _satisfaction_rows(self, month)
        raise KeyError(dataset)

    def tables(self, month: str | None = None) -> dict[str, list[dict]]:
        """Every dataset's rows (of one month): what a reader who downloads everything has."""
        return {dataset: self.rows(dataset, month) for dataset in DATASETS}

    def categories(self, total: Quantity) -> list[Quantity]:
        """The category counts of a breakdown table's service total (``total.measure`` is TOTAL)."""
        return [Quantity(total.table, total.month, service, category)
                for service, _month, category in self.month_keys(total.table, total.month)
                if service == total.service and category != TOTAL]

    def value(self, quantity: Quantity):
        table, key = _figure_key(quantity)
        return self.protections[table].published.get(key)

    def withhold(self, quantity: Quantity) -> None:
        table, key = _figure_key(quantity)
        protection = self.protections[table]
        if key in protection.published:
            del protection.published[key]
            protection.suppressed[key] = REASON_SECONDARY

    def publish_again(self, quantity: Quantity, value: int) -> None:
        """Undo :meth:`withhold` (a tentative withholding while choosing the best one)."""
        table, key = _figure_key(quantity)
        protection = self.protections[table]
        protection.suppressed.pop(key, None)
        protection.published[key] = value

    def withheld(self, month: str) -> dict:
        """Every withheld count of ``month`` with its reason: table -> {figure key: reason}."""
        return {table: {key: protection.suppressed[key] for key in self.month_keys(table, month)
                        if key in protection.suppressed} for table, protection in self.protections.items()}

    def withhold_month(self, month: str) -> None:
        """Withhold every count of ``month`` in every dataset but the zeros: the last resort of :func:`_widen`.

        With every other count withheld no published figure bounds a count from above, so nothing is
        narrow; zeros stay, as everywhere ("nobody" discloses nobody, and a reader relies on it).
        """
        for table, protection in self.protections.items():
            for key in [k for k in self.month_keys(table, month) if protection.published.get(k)]:
                del protection.published[key]
                protection.suppressed[key] = REASON_SECONDARY


#: How many of the cheapest moves :func:`_widen` tries before it withholds one, when one of them widens
#: the range; when none does, it goes on through the dearer ones (a count whose bounds come from another
#: table, say payments that equal applications, is only widened there).
LOOKAHEAD = 4


#: Bump whenever the suppression changes: stored month decisions of another method are recomputed.
METHOD_VERSION = 2


@dataclass(frozen=True)
class StoredMonth:
    """A month's audited decisions: the digest of their inputs, every withheld count with its reason
    (table -> {figure key: reason}), and how many sensitive counts the audit checked."""

    digest: str
    withheld: dict
    checked: int


class MonthStore:
    """Where audited month decisions are kept between downloads: here in memory (tests, benchmarks);
    :class:`DatabaseStore` keeps them in ``portal.open_data_months``."""

    def __init__(self):
        self.months: dict[str, StoredMonth] = {}

    def get(self, month: str) -> StoredMonth | None:
        return self.months.get(month)

    def put(self, month: str, stored: StoredMonth) -> None:
        self.months[month] = stored

    def keep_only(self, months: set[str]) -> None:
        for month in set(self.months) - months:
            del self.months[month]


def protect_release(data: TenantData, services: dict, rules: Rules, store: MonthStore | None = None) -> Release:
    """Protect every dataset of a tenant so that the independent audit passes; the audit's report is kept.

    Month by month (months share no count, no total and no link constraint):

    1. each table through :func:`tenants.confidentiality.protect`: primary suppression, no exact
       recovery, no small remainder;
    2. the audit (tenants/opendata/audit.py) computes what a reader can still narrow down, with
       every table, the totals and the links between tables. For each withheld count a reader could
       pin or bound to within the threshold, further counts are withheld (:func:`_widen`);
    3. the audit runs once more over the month; :func:`released_rows` hands out nothing unless every
       month's final report is clean.

    A month whose inputs (its counts, the links of its services, the rules, :data:`METHOD_VERSION`)
    have the digest kept in ``store`` takes the kept decisions instead: they are the outcome of exactly
    that computation and its clean audit.
    """
    auditor = Auditor(data, rules.min_cases)
    protections = {table: Protection() for table in ("usage", *BREAKDOWN_TABLES, "satisfaction")}
    report, fresh = Report(), {}
    for month in sorted(data.months()):
        digest = _month_digest(auditor, month, rules)
        stored = store.get(month) if store is not None else None
        kept = stored is not None and stored.digest == digest
        for table, (atoms, figures) in _figures(auditor.data_by_month[month]).items():
            part = _kept(atoms, figures, stored.withheld.get(table, {})) if kept else protect(atoms, figures, rules)
            protections[table].published.update(part.published)
            protections[table].suppressed.update(part.suppressed)
        if kept:
            report.checked += stored.checked
        else:
            fresh[month] = digest
    release = Release(data, services, protections)
    for month, digest in fresh.items():
        try:
            for finding in auditor.audit(release.tables(month), [month]).findings:
                if finding.kind == PUBLISHED_SMALL:
                    release.withhold(finding.quantity)
                elif finding.kind == NARROW:
                    _widen(release, auditor, finding)
            final = auditor.audit(release.tables(month), [month])
        except AuditError as error:  # the audit could not decide: the month counts as failed
            log.error("disclosure audit of %s could not be carried out: %s", month, error)
            final = Report(findings=[Finding(UNSOLVED, Quantity("usage", month, TOTAL, "started"), 0)])
        report.merge(final)
        if final.ok and store is not None:
            store.put(month, StoredMonth(digest, release.withheld(month), final.checked))
    if store is not None:
        store.keep_only(set(data.months()))
    release.report = report
    return release


def _month_digest(auditor: Auditor, month: str, rules: Rules) -> str:
    """The inputs of a month's decisions: its counts, the links of its services, the rules, the method."""
    data = auditor.data_by_month.get(month, TenantData())
    services = {row[0] for row in data.usage} | {row[0] for row in data.ratings}
    services |= {row[0] for rows in data.breakdowns.values() for row in rows}
    links = sorted((k, v) for k, v in auditor.links.items() if k[1] in services)
    parts = (METHOD_VERSION, rules, month, sorted(data.usage), sorted(data.ratings),
             sorted((table, sorted(rows)) for table, rows in data.breakdowns.items()), links)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _cost(release: Release, candidate: Quantity, target: Quantity) -> tuple:
    """Order of the counts tried for ``target``: in its own row or column first (the classic complementary
    cell), then its table, totals last, smaller before larger (so that as much as possible stays visible)."""
    same_table = candidate.table == target.table
    beside = same_table and (candidate.measure == target.measure if candidate.table == "usage"
                             else candidate.service == target.service)
    total = TOTAL in (candidate.service, candidate.measure)
    return (not beside, total, not same_table, release.value(candidate), candidate)


def _width(finding: Finding | None) -> float:
    return math.inf if finding is None or finding.high is None else finding.high - finding.low


def _moves(release: Release, candidates: list[Quantity], target: Quantity) -> list[tuple[Quantity, ...]]:
    """What may be withheld in one step, cheapest first: a count, or a usage count with a partner in its row.

    In a usage row started = submitted + aborted (+ open); a count withheld alone in a row whose other
    counts are shown is pinned by them, and so pins its column partner. Withholding it together with the
    cheaper other count of its row keeps the row open: the two steps of the classic rectangle at once.
    """
    moves = []
    for candidate in candidates:
        move = (candidate,)
        if candidate.table == "usage" and candidate.service != TOTAL:
            row = [Quantity("usage", candidate.month, candidate.service, m) for m in USAGE_MEASURES]
            if all(release.value(q) is not None for q in row):
                partners = [q for q in row if q != candidate and q.measure != "started" and release.value(q)]
                if partners:
                    move = (candidate, min(partners, key=release.value))
        elif candidate.table in BREAKDOWN_TABLES and candidate.measure == TOTAL and candidate.service != TOTAL:
            parts = release.categories(candidate)
            if parts and all(release.value(q) is not None for q in parts) and any(map(release.value, parts)):
                move = (candidate, min((q for q in parts if release.value(q)), key=release.value))
        moves.append(move)
    return sorted(moves, key=lambda move: (_cost(release, move[0], target)[:3],
                                           sum(release.value(q) for q in move), move))


def _widen(release: Release, auditor: Auditor, finding: Finding) -> None:
    """Withhold counts until the audit finds ``finding``'s quantity wide enough.

    Each step tries the cheapest few moves (:func:`_moves`) and takes the first that makes the quantity
    safe, else the one that widens it most; when none of the few widens it, the dearer moves are tried as
    well (taking a useless cheap one would start a cascade: in the demo a month lost every submitted and
    aborted count to one small aborted count that only its service's payment total pinned).

    Withholding never narrows any range (it only takes constraints away), so a quantity made safe stays
    safe while others are treated. Zeros are never withheld ("nobody" is published). When nothing near
    is left to withhold, the whole month goes.
    """
    target, month = finding.quantity, finding.quantity.month
    current = auditor.check(release.tables(month), target)  # what was withheld for others may be enough
    while current is not None:
        candidates = [c for c in current.bounded_by if release.value(c)]
        if not candidates:
            release.withhold_month(month)
            return
        best, best_after = None, None
        for tried, move in enumerate(_moves(release, candidates, target)):
            if tried >= LOOKAHEAD and _width(best_after) > _width(current):
                break  # the cheap moves widened it: take the best of them
            values = [(q, release.value(q)) for q in move]
            for q in move:
                release.withhold(q)
            after = auditor.check(release.tables(month), target)
            for q, value in values:
                release.publish_again(q, value)
            if best is None or _width(after) > _width(best_after):
                best, best_after = move, after
            if after is None:
                break
        for q in best:
            release.withhold(q)
        current = best_after


class DisclosureRisk(RuntimeError):
    """The final audit found a withheld count a reader could narrow down: the tenant's tables are not released."""

    def __init__(self, report: Report):
        super().__init__("; ".join(str(f.quantity) + " " + f.kind for f in report.findings[:10]))
        self.report = report


# --- rendering the rows -----------------------------------------------------------------------------


def _ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 4)


class _Rows:
    """Collects output rows; a None value is a withheld cell and is named in ``suppressed``."""

    def __init__(self, services, category: str | None = None):
        self.services, self.category = services, category
        self.rows = []

    def add(self, service_key: str, month: str, **values):
        leika, name = ("", "Alle Online-Dienste") if service_key == TOTAL else self.services.get(
            service_key, ("", service_key))
        hidden = [k for k, v in values.items() if v is None]
        self.rows.append({"month": month, "service_key": service_key, "leika_key": leika, "service_name": name,
                          **values, "suppressed": ";".join(hidden)})

    def sorted(self):
        """Month, then services (the total last), then category: each row has its own place."""
        return sorted(self.rows, key=lambda r: (r["month"], r["service_key"] == TOTAL, r["service_key"],
                                                str(r.get(self.category, ""))))


def _usage_rows(release: Release, month: str | None, completion: bool) -> list[dict]:
    protection = release.protections["usage"]
    out = _Rows(release.services)
    for _, service, m in release.month_keys("usage", month):
        if _ != "started":
            continue
        values = {measure: protection.value((measure, service, m)) for measure in USAGE_MEASURES}
        if completion:
            started = values["started"]
            out.add(service, m, started=started, completion_rate=_ratio(values["submitted"], started),
                    abandonment_rate=_ratio(values["aborted"], started))
        else:
            out.add(service, m, **values)
    return out.sorted()


def _breakdown_rows(release: Release, table: str, month: str | None) -> list[dict]:
    category, measure = BREAKDOWN_TABLES[table]
    protection = release.protections[table]
    out = _Rows(release.services, category)
    for service, m, cat in release.month_keys(table, month):
        count, total = protection.value((service, m, cat)), protection.value((service, m, ALL))
        out.add(service, m, **{category: cat, measure: count, "share": _ratio(count, total)})
    return out.sorted()


def _satisfaction_rows(release: Release, month: str | None) -> list[dict]:
    protection = release.protections["satisfaction"]
    keys = release.month_keys("satisfaction", month)
    sums = release.rating_sums
    members = defaultdict(list)
    for s, m in keys:
        if s != TOTAL:
            members[m].append((s, m))
    out = _Rows(release.services)
    for key in keys:
        ratings = protection.value(key)
        parts = members[key[1]] if key[0] == TOTAL else [key]
        average = None if not ratings else round(sum(sums[k] for k in parts) / ratings, 2)
        out.add(key[0], key[1], ratings=ratings, average_rating=average)
    return out.sorted()


# --- the tables a tenant publishes ---------------------------------------------------------------


class DatabaseStore(MonthStore):
    """Audited month decisions in ``portal.open_data_months`` (migration 0013), read and written in the
    tenant's own transaction (RLS applies). ``withheld`` is stored as {table: [[*figure key, reason]]}."""

    def __init__(self, session: Session, tenant_id: int):
        super().__init__()
        self.session, self.tenant_id = session, tenant_id
        for month, digest, withheld, checked in session.execute(text(
                "SELECT to_char(month, 'YYYY-MM'), data_digest, withheld, checked FROM portal.open_data_months "
                "WHERE tenant_id = :tenant"), {"tenant": tenant_id}):
            decisions = {table: {tuple(entry[:-1]): entry[-1] for entry in entries}
                         for table, entries in withheld.items()}
            self.months[month] = StoredMonth(digest, decisions, checked)

    def put(self, month: str, stored: StoredMonth) -> None:
        super().put(month, stored)
        withheld = {table: [[*key, reason] for key, reason in sorted(decisions.items())]
                    for table, decisions in stored.withheld.items()}
        self.session.execute(text(
            "INSERT INTO portal.open_data_months (tenant_id, month, data_digest, withheld, checked) "
            "VALUES (:tenant, CAST(:month || '-01' AS date), :digest, CAST(:withheld AS jsonb), :checked) "
            "ON CONFLICT (tenant_id, month) DO UPDATE SET data_digest = excluded.data_digest, "
            "withheld = excluded.withheld, checked = excluded.checked, computed_at = now()"),
            {"tenant": self.tenant_id, "month": month, "digest": stored.digest, "withheld": json.dumps(withheld),
             "checked": stored.checked})

    def keep_only(self, months: set[str]) -> None:
        gone = set(self.months) - months
        super().keep_only(months)
        if gone:
            self.session.execute(text(
                "DELETE FROM portal.open_data_months WHERE tenant_id = :tenant "
                "AND to_char(month, 'YYYY-MM') = ANY(:gone)"), {"tenant": self.tenant_id, "gone": sorted(gone)})


def tenant_release(session: Session, tenant_id: int, rules: Rules, today: date) -> Release:
    """Every dataset of the tenant, protected and audited (call inside ``tenant_transaction(tenant_id)``).

    Months whose inputs did not change since they were last audited take the kept decisions; the
    others are computed and kept (written in this transaction).
    """
    data, services = tenant_data(session, tenant_id, today), _services(session, tenant_id)
    return protect_release(data, services, rules, DatabaseStore(session, tenant_id))


def dataset_rows(session: Session, tenant_id: int, dataset: str, rules: Rules, today: date) -> list[dict]:
    """The protected rows of one dataset for one tenant; call inside ``tenant_transaction(tenant_id)``.

    :raise DisclosureRisk: the final audit is not clean; nothing of the tenant is released.
    :raise KeyError: unknown dataset.
    """
    if dataset not in DATASETS:
        raise KeyError(dataset)
    return released_rows(tenant_release(session, tenant_id, rules, today), dataset)


def released_rows(release: Release, dataset: str) -> list[dict]:
    """The rows of ``dataset``, handed out only when the final audit of every month is clean.

    :raise DisclosureRisk: it is not; the message names the quantities, never their values.
    """
    if not release.report.ok:
        raise DisclosureRisk(release.report)
    return release.rows(dataset)
