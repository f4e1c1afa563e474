"""The disclosure audit (tenants/opendata/audit.py), and the suppression measured against it.

Three kinds of test: the audit's ranges against brute-force enumeration (so the solver is checked
by something that is not a solver); generated tenants through the whole suppression, which the
audit must clear; and the suppression deliberately weakened, which the audit must catch.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tenants.confidentiality as confidentiality
import tenants.opendata.datasets as datasets
from tenants.confidentiality import Rules
from tenants.opendata.audit import MISMATCH, NARROW, PUBLISHED_SMALL, Auditor, Quantity, TenantData, audit
from tenants.opendata.datasets import MonthStore, protect_release

M = "2026-06"
MEASURES = ("started", "submitted", "aborted")


def _usage_rows(cells: dict, totals: dict) -> list[dict]:
    """Usage rows as the public CSV has them: cells {(service, measure): value or None}."""
    services = sorted({s for s, _ in cells})
    rows = [{"month": M, "service_key": s, **{m: cells[(s, m)] for m in MEASURES}} for s in services]
    return rows + [{"month": M, "service_key": "total", **totals}]


# --- the audit's ranges are exact -------------------------------------------------------------------


@st.composite
def small_months(draw):
    """2-3 services with counts 0-2 (open >= 0), a random choice of withheld cells, all totals shown."""
    truth = {}
    for service in [f"9900000000000{i}" for i in range(draw(st.integers(2, 3)))]:
        submitted, aborted, still_open = (draw(st.integers(0, 2)) for _ in range(3))
        truth[service] = (submitted + aborted + still_open, submitted, aborted)
    withheld = {(s, m) for s in truth for m in MEASURES if draw(st.booleans())}
    return truth, withheld


def _brute_force(truth: dict, shown: dict, totals: dict) -> dict:
    """Every quantity's (min, max) over all whole-number tables that agree with what is shown.

    The reader's rules, written out: counts are whole and >= 0, started = submitted + aborted + open,
    a withheld count that is not 0 is at least 1, the rows add up to the totals. Rows are enumerated
    one service at a time; a row is possible when the other services can make up the rest of the totals.
    """
    services, target = sorted(truth), (totals["started"], totals["submitted"], totals["aborted"])
    options = {}
    for s in services:
        options[s] = []
        for sub, abo in itertools.product(range(target[1] + 1), range(target[2] + 1)):
            for rest in range(target[0] - sub - abo + 1):
                row = {"started": sub + abo + rest, "submitted": sub, "aborted": abo}
                if all(shown[(s, m)] == row[m] if shown[(s, m)] is not None else row[m] >= 1 or truth[s][i] == 0
                       for i, m in enumerate(MEASURES)):
                    options[s].append((row["started"], sub, abo))

    def reachable(group: list) -> set:
        sums = {(0, 0, 0)}
        for s in group:
            sums = {tuple(a + b for a, b in zip(total, o, strict=True)) for total in sums for o in options[s]}
            sums = {t for t in sums if all(x <= y for x, y in zip(t, target, strict=True))}
        return sums

    ranges: dict = {}
    for k, s in enumerate(services):
        before, after = reachable(services[:k]), reachable(services[k + 1:])
        for started, sub, abo in options[s]:
            if not any(tuple(t - o - b for t, o, b in zip(target, (started, sub, abo), p, strict=True)) in after
                       for p in before):
                continue
            for measure, value in zip((*MEASURES, "open"), (started, sub, abo, started - sub - abo), strict=True):
                low, high = ranges.get((s, measure), (value, value))
                ranges[(s, measure)] = (min(low, value), max(high, value))
    return ranges


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(month=small_months())
def test_the_audits_ranges_are_exactly_what_enumeration_finds(month):
    truth, withheld = month
    cells = {(s, m): None if (s, m) in withheld else truth[s][i] for s in truth for i, m in enumerate(MEASURES)}
    totals = {m: sum(truth[s][i] for s in truth) for i, m in enumerate(MEASURES)}
    published = {"usage": _usage_rows(cells, totals)}
    data = TenantData(usage=[(s, M, *truth[s]) for s in truth])
    expected = _brute_force(truth, cells, totals)
    auditor = Auditor(data, 3)
    for (service, measure), bounds in expected.items():
        assert auditor.range(published, Quantity("usage", M, service, measure)) == bounds, (service, measure)


# --- the attacks of the issue, as the audit sees them ---------------------------------------------


GRAB = {"99017004012000": (10, 9, 1), "99102013104000": (40, 30, 10), "99050012104000": (25, 20, 5),
        "99115005104000": (60, 45, 15), "99108001001000": (12, 8, 4), "99001001001000": (30, 24, 6)}


def test_totals_that_add_up_pin_a_withheld_count():
    """Issue 14, finding 1, exactly as published before the fix."""
    shown = {(s, m): v for s, row in GRAB.items() for m, v in zip(MEASURES, row, strict=True)}
    for hidden in [("99017004012000", "submitted"), ("99017004012000", "aborted"), ("99050012104000", "aborted"),
                   ("99108001001000", "aborted")]:
        shown[hidden] = None
    totals = {m: sum(r[i] for r in GRAB.values()) for i, m in enumerate(MEASURES)}
    report = audit(TenantData(usage=[(s, M, *r) for s, r in GRAB.items()]), {"usage": _usage_rows(shown, totals)}, 3)
    pinned = {f.quantity: (f.low, f.high) for f in report.findings if f.kind == NARROW}
    assert pinned[Quantity("usage", M, "99017004012000", "aborted")] == (1, 1)


def test_a_link_between_tables_counts_only_when_both_are_published():
    """Issue 14, finding 2: one payment per application pins the small submitted count, through the payment table."""
    truth = TenantData(usage=[("99050012104000", M, 7, 1, 3), ("99108001001000", M, 25, 12, 8),
                              ("99102013104000", M, 40, 30, 8)],
                       breakdowns={"payment": [("99108001001000", M, "paypal", 8),
                                               ("99108001001000", M, "credit_card", 4)]})
    shown = {("99050012104000", "started"): 7, ("99050012104000", "submitted"): None,
             ("99050012104000", "aborted"): None, ("99108001001000", "started"): 25,
             ("99108001001000", "submitted"): None, ("99108001001000", "aborted"): 8,
             ("99102013104000", "started"): 40, ("99102013104000", "submitted"): 30,
             ("99102013104000", "aborted"): 8}
    usage = _usage_rows(shown, {"started": 72, "submitted": 43, "aborted": 19})
    payment = [{"month": M, "service_key": "99108001001000", "payment_method": k, "payments": n, "share": None}
               for k, n in (("paypal", 8), ("credit_card", 4), ("total", 12))]
    small = Quantity("usage", M, "99050012104000", "submitted")
    assert small not in {f.quantity for f in audit(truth, {"usage": usage}, 3).findings}
    findings = {f.quantity: f for f in audit(truth, {"usage": usage, "payment": payment}, 3).findings}
    assert (findings[small].low, findings[small].high) == (1, 1)


def test_a_channel_table_would_be_linked_like_payments_and_logins():
    """Channels are not published today; the audit links a channel table to usage all the same: here every
    started process has its channel, so the channel total pins a withheld started count of 2."""
    truth = TenantData(usage=[("99102013104000", M, 2, 1, 1), ("99115005104000", M, 30, 20, 10)],
                       breakdowns={"channel": [("99102013104000", M, "web", 2), ("99115005104000", M, "web", 30)]})
    usage = _usage_rows({("99102013104000", "started"): None, ("99102013104000", "submitted"): None,
                         ("99102013104000", "aborted"): None, ("99115005104000", "started"): None,
                         ("99115005104000", "submitted"): None, ("99115005104000", "aborted"): None},
                        {"started": None, "submitted": None, "aborted": None})
    channel = [{"month": M, "service_key": "99102013104000", "channel": k, "sessions": n, "share": None}
               for k, n in (("web", 2), ("total", 2))]
    started = Quantity("usage", M, "99102013104000", "started")
    assert started not in {f.quantity for f in audit(truth, {"usage": usage}, 3).findings}
    found = {f.quantity: f for f in audit(truth, {"usage": usage, "channel": channel}, 3).findings}
    assert (found[started].low, found[started].high) == (2, 2)


def test_a_published_count_below_the_threshold_or_off_the_data_is_reported():
    truth = TenantData(usage=[("99102013104000", M, 5, 2, 3)])
    rows = _usage_rows({("99102013104000", "started"): 5, ("99102013104000", "submitted"): 2,
                        ("99102013104000", "aborted"): 4}, {"started": 5, "submitted": 2, "aborted": 3})
    kinds = {(f.kind, f.quantity.measure, f.quantity.service) for f in audit(truth, {"usage": rows}, 3).findings}
    assert (PUBLISHED_SMALL, "submitted", "99102013104000") in kinds
    assert (MISMATCH, "aborted", "99102013104000") in kinds


# --- generated tenants through the whole suppression -------------------------------------------------


@st.composite
def tenants(draw):
    """A tenant with 2-6 services over 1-2 months: small counts often, fee services whose payments follow
    their applications, logins for a share of the starts, a few ratings."""
    small = st.sampled_from([0, 1, 1, 2, 2, 3, 4, 5, 7, 12, 30])
    usage, payments, logins, ratings = [], [], [], []
    services = [f"99{i:012d}" for i in range(draw(st.integers(2, 6)))]
    fee = {s for s in services if draw(st.booleans())}
    for month in ["2026-05", "2026-06"][:draw(st.integers(1, 2))]:
        for service in services:
            submitted, aborted, still_open = draw(small), draw(small), draw(st.sampled_from([0, 0, 0, 1, 2]))
            if submitted + aborted + still_open == 0:
                continue
            usage.append((service, month, submitted + aborted + still_open, submitted, aborted))
            if service in fee and submitted:
                first = draw(st.integers(0, submitted))
                payments += [(service, month, k, n) for k, n in (("paypal", first), ("wero", submitted - first)) if n]
            started = submitted + aborted + still_open
            eid = draw(st.integers(0, started))
            logins += [(service, month, "bundid_eid", eid)] if eid else []
            rated = draw(st.integers(0, submitted))
            if rated:
                ratings.append((service, month, rated, rated * draw(st.integers(1, 5))))
    return TenantData(usage=usage, breakdowns={"payment": payments, "authentication": logins}, ratings=ratings)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=tenants(), min_cases=st.sampled_from([3, 3, 4]))
def test_every_generated_tenant_passes_the_audit(data, min_cases):
    release = protect_release(data, {}, Rules(min_cases=min_cases))
    assert release.report.ok, [str(f) for f in release.report.findings]
    # The audit again, from scratch, on exactly what would be served.
    tables = release.tables()
    assert audit(data, tables, min_cases).ok
    for rows in tables.values():
        for row in rows:
            for column in ("started", "submitted", "aborted", "payments", "authentications", "ratings"):
                assert not 0 < (row.get(column) or 0) < min_cases, row
    # Kept decisions give the same tables without the audit-driven step.
    store = MonthStore()
    assert protect_release(data, {}, Rules(min_cases=min_cases), store).tables() == tables
    assert protect_release(data, {}, Rules(min_cases=min_cases), store).tables() == tables


# --- the audit notices a weakened suppression --------------------------------------------------------


def _corpus() -> list[TenantData]:
    """Deterministic tenants of the same kind as the generated ones."""
    rng, found = random.Random(14), []
    for _ in range(12):
        usage, payments = [], []
        for s in range(6):
            service = f"99{s:012d}"
            submitted, aborted = rng.choice([1, 2, 4, 9, 20]), rng.choice([0, 1, 2, 6, 15])
            usage.append((service, M, submitted + aborted, submitted, aborted))
            if s % 2:
                payments.append((service, M, "paypal", submitted))
        found.append(TenantData(usage=usage, breakdowns={"payment": payments, "authentication": []}))
    return found


def _findings(data: TenantData, rules: Rules = Rules()) -> list:
    return audit(data, protect_release(data, {}, rules).tables(), 3).findings


def test_without_the_audit_driven_step_the_audit_finds_pinned_counts(monkeypatch):
    assert not any(_findings(data) for data in _corpus())
    monkeypatch.setattr(datasets, "_widen", lambda release, auditor, finding: None)
    weakened = [f for data in _corpus() for f in _findings(data)]
    assert any(f.kind == NARROW and f.low == f.high for f in weakened)


def test_without_secondary_suppression_the_audit_finds_recoverable_counts(monkeypatch):
    monkeypatch.setattr(datasets, "_widen", lambda release, auditor, finding: None)
    monkeypatch.setattr(confidentiality, "_recovery_victim", lambda *args: None)
    monkeypatch.setattr(confidentiality, "_remainder_victim", lambda *args: None)
    weakened = [f for data in _corpus() for f in _findings(data)]
    assert sum(f.kind == NARROW and f.low == f.high for f in weakened) >= 10


def test_with_a_lower_threshold_the_audit_finds_small_published_counts(monkeypatch):
    weakened = [f for data in _corpus() for f in _findings(data, Rules(min_cases=1))]
    assert any(f.kind == PUBLISHED_SMALL for f in weakened)


#: Payments of one month: three single payments and four by PayPal. Each 1 is withheld, the remainder
#: total - PayPal = 3 is large enough for the secondary suppression, and yet every 1 is pinned: three
#: withheld counts of at least 1 each that add up to 3.
SINGLES = TenantData(usage=[("99108001001000", M, 7, 7, 0)], breakdowns={"payment": [
    ("99108001001000", M, method, n) for method, n in (("credit_card", 1), ("paypal", 4), ("sepa_direct_debit", 1),
                                                         ("wero", 1))]})


@pytest.mark.parametrize(("weaken", "data"), [("repair", SINGLES),
                                               ("secondary", TenantData(usage=[(s, M, *r) for s, r in GRAB.items()]))])
def test_a_weakened_suppression_is_not_released(monkeypatch, weaken, data):
    assert protect_release(data, {}, Rules()).report.ok
    monkeypatch.setattr(datasets, "_widen", lambda release, auditor, finding: None)
    if weaken == "secondary":
        monkeypatch.setattr(confidentiality, "_recovery_victim", lambda *args: None)
    release = protect_release(data, {}, Rules())
    assert not release.report.ok  # the final audit inside the suppression notices ...
    with pytest.raises(datasets.DisclosureRisk):  # ... and nothing is handed out
        datasets.released_rows(release, "usage")


def test_the_last_resort_withholds_all_but_the_zeros_and_passes(monkeypatch):
    """When nothing near a narrow count is left to withhold, its whole month goes (zeros stay published)."""
    monkeypatch.setattr(datasets, "_widen", lambda release, auditor, finding: None)
    for data in [*_corpus(), SINGLES]:
        release = protect_release(data, {}, Rules())
        for month in data.months():
            release.withhold_month(month)
        tables = release.tables()
        assert audit(data, tables, 3).ok
        usage = [row[m] for row in tables["usage"] for m in MEASURES]
        assert set(usage) <= {None, 0} and (0 in usage) == any(0 in row[2:] for row in data.usage)


def test_a_month_the_solver_cannot_decide_is_not_released(monkeypatch):
    from tenants.opendata.audit import UNSOLVED, AuditError

    def fails(*args, **kwargs):
        raise AuditError("no verdict")

    monkeypatch.setattr(datasets.Auditor, "audit", fails)
    release = protect_release(SINGLES, {}, Rules())
    assert [f.kind for f in release.report.findings] == [UNSOLVED]
    with pytest.raises(datasets.DisclosureRisk):
        datasets.released_rows(release, "payment")
