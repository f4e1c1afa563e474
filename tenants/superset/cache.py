"""Superset's data cache: kept until a tenant's data changes, warm again right after.

Superset keys every cached chart result by, among other things, the dataset's
``changed_on`` (``QueryContextProcessor.query_cache_key``) and the row rules of
whoever asks. Each tenant has datasets of its own, so moving ``changed_on`` of
a tenant's datasets retires exactly that tenant's cached results, and nobody
else's: :func:`data_changed` does that in Superset's metadata database (one
``UPDATE``), after the commit that changed the tenant's figures. Cached results
otherwise live for a week (``DATA_CACHE_CONFIG`` in superset_config.py), not
ten minutes: data changes only when it arrives.

Warming: Superset remembers the chart-data requests embedded viewers made
(``superset_config/serving.py`` writes each distinct request body of a guest
into the Redis hash :func:`recorded_key`), and :func:`warm_tenant`, queued by
:func:`data_changed`, asks them again as a guest of the same tenant with the
same row rules, so they land under the very keys the next viewer's requests
compute. A chart Superset computes anew is asked twice: the second answer comes
from Superset's cache and is kept as the stored answer (superset_config/answers.py),
and the embedded page's metadata requests are asked too, so the first viewer after
a load reads copies and waits for nothing. The hash holds only requests of the
tenant's own dashboards (the guest token names the tenant); it is read by the
worker and by nobody in Superset.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import psycopg
import requests

from tenants.context import tenant_transaction
from tenants.jobs import enqueue, redis_connection
from tenants.models import Tenant
from tenants.settings import get_settings

log = logging.getLogger(__name__)

#: Recorded requests older than this are not asked again (a dashboard nobody opened for a month).
RECORD_MAX_AGE_SECONDS = 30 * 24 * 3600
#: The key prefix of the recorded requests, shared with superset_config/serving.py.
RECORD_PREFIX = "egov_warm:"
#: Chromium's and Firefox's ``Accept-Encoding``: a stored answer is kept per encoding the browser accepts.
BROWSER_ACCEPT_ENCODING = "gzip, deflate, br, zstd"
#: Every analytics or comparison table a dataset's SQL reads, as written there.
_TABLE = re.compile(r"\b((?:analytics|benchmark)\.[a-z_]+)")


def recorded_key(ags: str) -> str:
    return f"{RECORD_PREFIX}{ags}"


def _dataset_tables() -> dict[str, set[str]]:
    from tenants.superset import templates

    return {name: set(_TABLE.findall(spec["sql"])) for name, spec in templates.datasets().items()}


def affected_datasets(state: dict[str, Any], tables: Iterable[str] | None) -> list[int]:
    """Ids of the tenant's datasets that read any of ``tables`` (None: all of them)."""
    ids = state.get("datasets", {})
    if tables is None:
        return sorted(ids.values())
    wanted = set(tables)
    reads = _dataset_tables()
    return sorted(dataset_id for name, dataset_id in ids.items() if reads.get(name, set()) & wanted)


def _meta_dsn() -> str:
    from tenants.superset.server import meta_dsn

    return meta_dsn(get_settings())


def retire(dataset_ids: list[int]) -> int:
    """Move ``changed_on`` of these datasets to now: every result cached for them is no longer found.

    :returns: the number of datasets changed.
    """
    if not dataset_ids:
        return 0
    with psycopg.connect(_meta_dsn(), connect_timeout=5) as conn:
        return conn.execute("UPDATE tables SET changed_on = clock_timestamp() WHERE id = ANY(%s)",
                            (dataset_ids,)).rowcount


def data_changed(tenant_ids: int | Iterable[int], tables: Iterable[str] | None = None, warm: bool = True) -> int:
    """Call after a commit that changed tenants' figures: their cached dashboard data is retired and warmed.

    :param tables: the tables that changed (``analytics.feedback``); None for a load that may touch all.
    :returns: how many datasets were retired. A tenant not provisioned in Superset is skipped. Never
        raises: the data is in; a failure here is logged, and the week's cache lifetime bounds it.
    """
    from tenants.superset.provision import load_state

    ids = [tenant_ids] if isinstance(tenant_ids, int) else list(tenant_ids)
    tables = None if tables is None else list(tables)
    to_warm: dict[int, list[int]] = {}
    try:
        for tenant_id in ids:
            found = affected_datasets(load_state(tenant_id), tables)
            if found:
                to_warm[tenant_id] = found
        count = retire([dataset_id for found in to_warm.values() for dataset_id in found])
    except Exception:  # noqa: BLE001 - Superset's database away: the load itself stays done
        log.exception("retiring Superset's cached data of tenants %s failed", ids)
        return 0
    if warm:
        for tenant_id, found in to_warm.items():
            try:
                # One waiting warm-up per tenant and datasets is enough: it asks after the latest change.
                job_id = f"superset-warm-{tenant_id}-" + "-".join(map(str, found))
                enqueue(warm_tenant, tenant_id, found, queue="low", timeout=600, job_id=job_id)
            except Exception:  # noqa: BLE001 - Redis away: the next viewer computes the figures
                log.exception("queueing the warm-up of tenant %s failed", tenant_id)
    return count


def _records(ags: str) -> list[dict[str, Any]]:
    """The recorded requests of the tenant still worth asking, newest first; drops the stale ones."""
    store = redis_connection(get_settings().superset_redis_url)
    key = recorded_key(ags)
    found, stale = [], []
    for field, raw in store.hgetall(key).items():
        try:
            record = json.loads(raw)
        except ValueError:
            stale.append(field)
            continue
        if time.time() - float(record.get("at", 0)) > RECORD_MAX_AGE_SECONDS:
            stale.append(field)
        else:
            found.append(record)
    if stale:
        store.hdel(key, *stale)
    return sorted(found, key=lambda r: -float(r.get("at", 0)))


def _all_cached(response: requests.Response) -> bool:
    try:
        results = response.json().get("result") or []
    except (ValueError, AttributeError):
        return False
    return bool(results) and all(isinstance(r, dict) and r.get("is_cached") for r in results)


def _dataset_of(body: dict[str, Any]) -> int | None:
    datasource = body.get("datasource") or {}
    try:
        return int(datasource.get("id"))
    except (TypeError, ValueError):
        return None


def warm_tenant(tenant_id: int, dataset_ids: list[int] | None = None) -> dict[str, int]:
    """The job: ask Superset again what the tenant's viewers asked, so the next viewer finds it cached.

    :param dataset_ids: only requests on these datasets (the ones retired); None: all.

    :returns: ``{"asked": n, "failed": m}``; a request Superset refuses (a dashboard since removed)
        counts as failed and is forgotten.
    """
    from tenants.superset import embedding, guest

    settings = get_settings()
    with tenant_transaction(tenant_id) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None or not tenant.is_active:
            return {"asked": 0, "failed": 0}
        ags = tenant.ags
        ours = {d.embedded_uuid for d in embedding.list_dashboards(session, tenant_id)}
        rules = embedding.benchmark_rules(session, tenant_id)
    tokens: dict[str, str] = {}
    asked = failed = 0
    base = settings.superset_url.rstrip("/")
    http = requests.Session()
    # What the stored answers' keys hold (superset_config/answers.py): answers compressed as browsers accept.
    http.headers["Accept-Encoding"] = BROWSER_ACCEPT_ENCODING
    for record in _records(ags):
        dashboard = record.get("dashboard")
        if dashboard not in ours or (dataset_ids is not None and "body" in record
                                     and _dataset_of(record["body"]) not in dataset_ids):
            continue
        if dashboard not in tokens:
            tokens[dashboard] = guest.mint(settings, tenant_id, ags, dashboard, f"warm-{ags}", rules)
        headers = {"X-GuestToken": tokens[dashboard]}
        query = f"?{record['query']}" if record.get("query") else ""
        if record.get("method") == "GET":
            # The embedded page's metadata, in the language the page asked for it (the Referer carries it).
            headers["Referer"] = f"{base}/embedded/{dashboard}?{urlencode({'_l_': record.get('language', 'de')})}"
            response = http.get(base + record["path"] + query, headers=headers, timeout=60)
        else:
            # The bytes a browser's JSON.stringify sends: a stored answer's key holds the exact body.
            body = json.dumps(record["body"], separators=(",", ":"), ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
            for _ in range(2):  # computed, then (asked again) from Superset's cache and so kept as stored
                response = http.post(base + "/api/v1/chart/data" + query, data=body, headers=headers, timeout=60)
                if response.status_code != 200 or _all_cached(response):
                    break
        asked += 1
        if response.status_code != 200:
            failed += 1
            log.info("warm-up of tenant %s: Superset answered %s", ags, response.status_code)
    return {"asked": asked, "failed": failed}
