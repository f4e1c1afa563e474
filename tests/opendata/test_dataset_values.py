"""Values of the Open Data datasets worked out by hand from their documented definitions
(tenants/opendata/datasets.py, docs/open-data.md, docs/confidentiality.md). Added for surviving
mutants of ``make mutation`` (docs/mutation.md).
"""

from __future__ import annotations

from tenants.confidentiality import Rules
from tenants.opendata.datasets import build_completion, build_satisfaction, build_usage

HUNDESTEUER = "99102013104000"


def _row(rows, service):
    return next(r for r in rows if r["service_key"] == service)


def test_started_equal_to_submitted_plus_aborted_does_not_give_away_a_small_count():
    """12 started, 11 submitted, 1 aborted (none open): with started and submitted public, 12 - 11 would
    be the one abandonment. Readers know started = submitted + aborted + open; so one more is withheld."""
    row = _row(build_usage([(HUNDESTEUER, "2026-01", 12, 11, 1)], {}, Rules()), HUNDESTEUER)
    assert row["aborted"] is None
    assert (row["started"] is None) != (row["submitted"] is None)


def test_completion_and_abandonment_rates():
    row = _row(build_completion([(HUNDESTEUER, "2026-01", 40, 30, 10)], {}, Rules()), HUNDESTEUER)
    assert (row["started"], row["completion_rate"], row["abandonment_rate"]) == (40, 0.75, 0.25)


def test_satisfaction_averages_per_service_and_for_the_month():
    rows = build_satisfaction([("local:a", "2026-01", 3, 12), ("local:b", "2026-01", 4, 10)], {}, Rules())
    assert [(r["month"], r["service_key"], r["ratings"], r["average_rating"]) for r in rows] == [
        ("2026-01", "local:a", 3, 4.0), ("2026-01", "local:b", 4, 2.5), ("2026-01", "total", 7, 3.14)]


def test_publishing_again_after_a_withdrawal_is_a_new_publication(app, two_tenants, monkeypatch):
    """Withdrawn, then published again: issued anew and no longer withdrawn; publishing an already
    published dataset again with the same licence changes neither date."""
    from datetime import UTC, datetime

    from tenants.context import tenant_transaction
    from tenants.models import Tenant
    from tenants.opendata import publication

    clock = iter(datetime(2026, 5, day, tzinfo=UTC) for day in range(1, 28))
    monkeypatch.setattr(publication, "_now", lambda: next(clock))
    with app.app_context(), tenant_transaction(two_tenants.a.id) as session:
        tenant = session.get(Tenant, two_tenants.a.id)
        args = ("dl-by-de/2.0", "opendata@marburg.de", "admin")
        (pub,) = publication.publish(session, tenant, ["usage"], *args)
        publication.withdraw(session, tenant, "usage", "admin")
        withdrawn = pub.withdrawn_at
        assert withdrawn is not None and not pub.is_published
        publication.publish(session, tenant, ["usage"], *args)
        issued = pub.published_at
        assert pub.is_published and pub.withdrawn_at is None and issued > withdrawn
        publication.publish(session, tenant, ["usage"], *args)
        assert pub.published_at == issued
