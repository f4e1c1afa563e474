"""Dashboards stay cached until the tenant's data changes, show new figures right after a load, and are warm again.

Real Superset, real Chromium, real RQ jobs: the load runs as the worker runs it, the warm-up is the
job the load queues.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tenants.superset import templates
from tests.superset.conftest import add_user
from tests.superset.test_embedding import open_dashboard, started_sum


def _started_totals(chart_data: list[dict]) -> list[int]:
    return [row["Begonnen"] for body in chart_data for result in body["result"] for row in result["data"]
            if set(row) == {"Begonnen"}]


def _all_cached(chart_data: list[dict]) -> bool:
    return all(result.get("is_cached") for body in chart_data for result in body["result"])


def _load_through_the_worker(app, tenant, started: int, tmp_path, queues: list[str]) -> None:
    """An upload of one day's figures, loaded by the worker as the portal's upload would have it loaded."""
    from demo.superset import SERVICES
    from ingest_workers.worker import run_worker
    from tenants.context import tenant_transaction
    from tenants.ingest.runs import QUEUE, accept_batch, enqueue_run, spool_bytes
    from tenants.models import DataSource, Tenant
    from tests.ingest.conftest import add_source

    day = (date.today() - timedelta(days=1)).isoformat()
    body = f"day,service_key,measure,value\n{day},{SERVICES[0][0]},started,{started}\n".encode()
    with app.app_context():
        source_id = add_source(tenant.id, f"Zähler {started}", profile="canonical-aggregates")
        spooled, key = spool_bytes(tenant.id, iter([body]), ".csv")
        with tenant_transaction(tenant.id) as session:
            run, new = accept_batch(session, session.get(Tenant, tenant.id),
                                    session.get(DataSource, (tenant.id, source_id)), key, spooled, "csv",
                                    "zahlen.csv", "test")
            run_id = run.id
        assert new
        enqueue_run(tenant.id, run_id)
    run_worker(app, [QUEUE, *queues], burst=True, with_scheduler=False)


def test_a_viewer_sees_new_figures_right_after_a_load_and_cached_after_the_warm_up(
        ss_app, ss_live_server, tenants_ab, browser, owner_engine, tmp_path):
    a = tenants_ab.a
    viewer = add_user(ss_app, a, "viewer", subject="viewer-cache-test")

    def view() -> list[dict]:
        return open_dashboard(browser, ss_app, ss_live_server.url, a, viewer, "overview")

    before = started_sum(owner_engine, a.id)
    assert _started_totals(view()) == [before]
    assert _all_cached(view())  # a second view is answered from the cache

    # A load finishes (the warm-up it queues does not run yet): the next view shows its figures. Small
    # counts: the embedding test relies on Fulda's figures being far larger than Marburg's.
    _load_through_the_worker(ss_app, a, 7, tmp_path, queues=[])
    after_load = started_sum(owner_engine, a.id)
    assert after_load != before
    assert _started_totals(view()) == [after_load]

    # Another load, and the warm-up it queues runs too: the viewer gets the new figures from the cache, and
    # the page's metadata and every chart from the stored answers (superset_config/answers.py): the first
    # viewer after a load waits for neither PostgreSQL nor Superset's own request handling.
    _load_through_the_worker(ss_app, a, 11, tmp_path, queues=["low"])
    after_warm = started_sum(owner_engine, a.id)
    assert after_warm != after_load
    answered_by: dict[str, str | None] = {}
    warm = open_dashboard(browser, ss_app, ss_live_server.url, a, viewer, "overview", answered_by)
    assert _started_totals(warm) == [after_warm]
    assert _all_cached(warm)
    assert len(answered_by) >= 5 and any(k.startswith("GET /api/v1/dashboard/") for k in answered_by)
    # Only the roles are the viewer's own (they name her): the warm-up cannot ask them for her.
    assert {k: v for k, v in answered_by.items() if v != "stored" and "/me/roles/" not in k} == {}


@pytest.mark.parametrize("key", list(templates.dashboards()))
def test_every_question_of_a_dashboard_seen_before_is_a_stored_answer(ss_app, ss_live_server, tenants_ab, browser,
                                                                       key):
    """Each ready-made dashboard, every chart and every native filter (keyed by its filter id, so one filter
    answered by Superset cannot hide behind another one's stored answer): the third view of a viewer is answered
    from the stored copies (the first view computes, the second comes from Superset's cache and is kept)."""
    from datetime import UTC, datetime

    a = tenants_ab.a
    viewer = add_user(ss_app, a, "viewer", subject=f"viewer-stored-{key}")
    open_dashboard(browser, ss_app, ss_live_server.url, a, viewer, key)
    # The metadata answers are stored per hour (they say "changed 3 hours ago"): views that straddle the full
    # hour start over once (a full run at 07:59 failed so).
    for _ in range(2):
        hour = datetime.now(UTC).hour
        open_dashboard(browser, ss_app, ss_live_server.url, a, viewer, key)
        answered_by: dict[str, str | None] = {}
        open_dashboard(browser, ss_app, ss_live_server.url, a, viewer, key, answered_by)
        if datetime.now(UTC).hour == hour:
            break
    charts = [k for k in answered_by if k.startswith("POST /api/v1/chart/data")]
    assert len(charts) >= len(templates.dashboards()[key]["charts"]), answered_by
    assert {k: v for k, v in answered_by.items() if v != "stored"} == {}


def test_a_load_retires_only_its_own_tenants_cached_figures(ss_app, tenants_ab):
    from tenants.superset import cache
    from tenants.superset.provision import load_state

    a, b = tenants_ab.a, tenants_ab.b
    with ss_app.app_context():
        ids_a = sorted(load_state(a.id)["datasets"].values())
        ids_b = sorted(load_state(b.id)["datasets"].values())
        feedback_a = load_state(a.id)["datasets"]["egov_feedback"]

        def changed_on() -> dict[int, object]:
            import psycopg

            with psycopg.connect(cache._meta_dsn()) as conn:
                return dict(conn.execute("SELECT id, changed_on FROM tables WHERE id = ANY(%s)",
                                         (ids_a + ids_b,)).fetchall())

        first = changed_on()
        assert cache.data_changed(a.id, warm=False) == len(ids_a)
        second = changed_on()
        assert all(second[i] > first[i] for i in ids_a)
        assert all(second[i] == first[i] for i in ids_b)
        # A rating changes only what reads the ratings.
        assert cache.data_changed(a.id, ["analytics.feedback"], warm=False) == 1
        third = changed_on()
        assert [i for i in ids_a if third[i] != second[i]] == [feedback_a]


def test_a_full_record_of_requests_makes_room_for_new_ones(ss_app, tenants_ab, superset_settings):
    """The warm-up asks what viewers asked; a tenant's record is bounded. Full of requests of dashboards since
    re-created, it once refused every new request, and the tenant's dashboards stayed cold after each load."""
    import json
    import time

    import redis

    from tenants.superset.cache import recorded_key
    from tests.superset.test_stored_answers import ask, started_total_body, token

    with ss_app.app_context():
        from tenants.superset.provision import load_state

        ctx = {"a": tenants_ab.a, "state_a": load_state(tenants_ab.a.id), "settings": superset_settings}
    store = redis.Redis.from_url(superset_settings.superset_redis_url)
    key = recorded_key(tenants_ab.a.ags)
    stale = {f"stale-{n}": json.dumps({"dashboard": "gone", "query": "", "body": {}, "at": n}) for n in range(400)}
    store.delete(key)
    store.hset(key, mapping=stale)
    began = time.time()
    assert ask(ctx, token(ctx), started_total_body(ctx, marker=40)).status_code == 200
    records = [json.loads(raw) for raw in store.hgetall(key).values()]
    assert len(records) <= 400
    assert [r for r in records if r["at"] >= began and r.get("body", {}).get("queries")]
