"""The demo data generator feeds realistic data through the real ingest paths."""

from __future__ import annotations

from datetime import date

from demo.data import demo_period, seed_tenant
from tests.ingest.conftest import rows


def test_two_weeks_of_demo_data_reach_every_part_of_the_model(app, two_tenants):
    a = two_tenants.a.id
    with app.app_context():
        loaded = seed_tenant(a, today=date(2026, 3, 16), days=14)
        again = seed_tenant(a, today=date(2026, 3, 16), days=14)
    assert again == {"skipped": True}
    assert loaded["events"] > 1000 and loaded["civento"] > 0 and loaded["web_days"] == 14
    # 20 services, each with usage; funnels lose people on the way.
    assert rows(app, a, "SELECT count(*) FROM analytics.services") == [(20,)]
    started, submitted = rows(app, a, "SELECT sum(started), sum(submitted) FROM analytics.rollup_service_daily")[0]
    assert 0.4 < submitted / started < 0.95
    assert rows(app, a, "SELECT count(DISTINCT service_key) FROM analytics.rollup_service_daily") == [(20,)]
    # The civento export arrived as daily counts, the Mängelmelder export mostly from the apps.
    assert rows(app, a, "SELECT count(DISTINCT service_key) FROM analytics.daily_aggregates") == [(3,)]
    channels = dict(rows(app, a, "SELECT channel, sum(started) FROM analytics.rollup_channel_daily "
                                 "WHERE service_key = 'local:maengelmelder' GROUP BY 1"))
    assert channels["ios"] + channels["android"] > channels["web"]
    assert rows(app, a, "SELECT count(*) > 3 FROM (SELECT DISTINCT auth_method FROM analytics.rollup_auth_daily) x"
                ) == [(True,)]
    assert rows(app, a, "SELECT count(*) FROM analytics.feedback WHERE comment ~ '@|[0-9]{6}'") == [(0,)]
    assert rows(app, a, "SELECT count(*) FROM analytics.web_visits_daily") == [(14,)]
    assert rows(app, a, "SELECT count(DISTINCT service_key) FROM analytics.web_pages_daily") == [(4,)]
    # Weekends are quieter than weekdays.
    weekday, weekend = rows(app, a, "SELECT avg(s) FILTER (WHERE extract(isodow FROM day) < 6), "
                                    "avg(s) FILTER (WHERE extract(isodow FROM day) >= 6) FROM "
                                    "(SELECT day, sum(started) s FROM analytics.rollup_service_daily GROUP BY 1) d")[0]
    assert weekday > weekend * 3 / 2
    # The step table adds up as a clerk reads it: a step's abandonments are among those who reached it,
    # and the next step is reached by the others (sessions of the demo end within their day or the next).
    steps = rows(app, a, "SELECT service_key, step_no, sum(reached), sum(aborted) FROM analytics.rollup_step_daily "
                         "WHERE service_key LIKE '99%' GROUP BY 1, 2 ORDER BY 1, 2")
    following = {(key, no): reached for key, no, reached, _ in steps}
    checked = [(reached - aborted, following[(key, no + 1)]) for key, no, reached, aborted in steps
               if (key, no + 1) in following]
    assert checked and sum(abs(left - right) for left, right in checked) <= len(checked)  # a night's sessions


def test_a_years_demo_starts_with_a_whole_month():
    """Begun mid-month, every trend started with a few days' counts (a line near 0, a first month in the
    comparisons that is no month); a short test demo keeps its few days."""
    year = demo_period(date(2026, 11, 30), 365)
    assert (year[0], year[-1]) == (date(2025, 11, 1), date(2026, 11, 29))
    assert demo_period(date(2026, 3, 16), 14)[0] == date(2026, 3, 2)
