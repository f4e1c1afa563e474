"""Who may read the metrics, what a request writes to the log, and that a refused sign-in is counted."""

from __future__ import annotations

import dataclasses
import io
import json
import logging

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tenants import metrics
from tenants.logs import configure_logging
from tenants.settings import SettingsError, load_settings

PUBLIC = "203.0.113.7"
TOKEN = "scrape-" + "x" * 32


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture(scope="module")
def token_app(database, redis_conn):
    """A portal behind one reverse proxy, with a scrape token."""
    from portal import create_app

    return create_app({"TESTING": True}, settings=dataclasses.replace(database, metrics_token=TOKEN, proxy_count=1))


def test_portal_metrics_only_for_loopback_or_the_token(app, token_app, two_tenants):
    client = app.test_client()
    client.get("/login")
    local = client.get("/metrics")
    assert local.status_code == 200 and local.headers["Cache-Control"] == "no-store"
    samples = _samples(local.get_data(as_text=True))
    # Latency by endpoint name, never by path.
    assert samples[("egov_http_request_duration_seconds_count", (("endpoint", "auth.login"), ("method", "GET")))] >= 1
    assert not [labels for _name, labels in samples if any("/" in str(v) for _k, v in labels)]

    assert client.get("/metrics", environ_base={"REMOTE_ADDR": PUBLIC}).status_code == 404
    # Through the proxy, the client is the forwarded one: the public cannot read them there either.
    proxied = token_app.test_client()
    assert proxied.get("/metrics", headers={"X-Forwarded-For": PUBLIC}).status_code == 404
    assert proxied.get("/metrics", headers={"X-Forwarded-For": PUBLIC,
                                            "Authorization": "Bearer wrong"}).status_code == 404
    assert proxied.get("/metrics", headers={"X-Forwarded-For": PUBLIC,
                                            "Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_worker_metrics_server_only_for_allowed_networks_or_the_token(settings):
    closed = dataclasses.replace(settings, metrics_allowed_networks=("10.0.0.0/8",), metrics_token=TOKEN)
    server = metrics.serve(closed, "worker", port=0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        assert requests.get(url, timeout=10).status_code == 404  # loopback is not in 10.0.0.0/8
        allowed = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert allowed.status_code == 200 and "# TYPE egov_ingest_rows_total counter" in allowed.text
    finally:
        server.shutdown()
        server.server_close()
    opened = metrics.serve(settings, "worker", port=0)
    try:
        assert requests.get(f"http://127.0.0.1:{opened.server_port}/metrics", timeout=10).status_code == 200
    finally:
        opened.shutdown()
        opened.server_close()


@pytest.fixture
def log_lines(settings):
    """The JSON lines this process logs during the test."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(settings, "portal", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_a_request_is_one_json_line_with_its_request_id(app, two_tenants, log_lines):
    client = app.test_client()
    response = client.get("/login?login_hint=erika%40marburg.de", headers={"X-Request-ID": "proxy-4711-abcdef"})
    assert response.headers["X-Request-ID"] == "proxy-4711-abcdef"
    line = next(line for line in log_lines() if line["message"] == "request")
    assert (line["request_id"], line["endpoint"], line["status"], line["path"]) == \
        ("proxy-4711-abcdef", "auth.login", 200, "/login")
    assert line["process"] == "portal" and line["duration_ms"] >= 0
    # No personal data: neither the query (an e-mail address) nor the client's address.
    assert "erika" not in json.dumps(log_lines()) and "127.0.0.1" not in json.dumps(line)

    # An id that is not sane (markup, spaces, far too long) is replaced by a new one.
    forged = client.get("/login", headers={"X-Request-ID": "<script> level=ERROR"}).headers["X-Request-ID"]
    assert forged != "<script> level=ERROR" and len(forged) == 32
    assert [line["request_id"] for line in log_lines() if line["message"] == "request"][-1] == forged


def test_a_refused_sign_in_is_counted_with_its_reason(app, two_tenants):
    client = app.test_client()
    key = ("egov_sign_ins_total", (("kind", "tenant"), ("outcome", "refused"), ("reason", "no_provider")))
    before = _samples(client.get("/metrics").get_data(as_text=True)).get(key, 0)
    assert client.get(f"/t/{two_tenants.a.ags}/login").status_code == 403  # Marburg has no identity provider
    assert _samples(client.get("/metrics").get_data(as_text=True))[key] == before + 1


def test_settings_refuse_a_wrong_network_or_log_format():
    with pytest.raises(SettingsError, match="METRICS_ALLOWED_NETWORKS"):
        load_settings({"EGOV_ENV": "test", "EGOV_METRICS_ALLOWED_NETWORKS": "intern"})
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings({"EGOV_ENV": "test", "EGOV_LOG_FORMAT": "xml"})
    assert load_settings({"EGOV_ENV": "test", "EGOV_METRICS_PORT": "0"}).metrics_port == 0


def test_the_scheduler_scrape_answers_while_redis_and_the_database_are_away(database):
    """Prometheus must learn that they are away, not lose the scheduler's figures with them."""
    from prometheus_client import CollectorRegistry, generate_latest

    from portal import create_app

    nowhere = dataclasses.replace(database, redis_url="redis://127.0.0.1:1/0",
                                  database_url="postgresql://nobody:x@127.0.0.1:1/nothing")
    registry = CollectorRegistry()
    registry.register(metrics.StateCollector(create_app({"TESTING": True}, settings=nowhere), max_age=0))
    samples = _samples(generate_latest(registry).decode())
    assert samples[("egov_queue_up", ())] == 0 and samples[("egov_database_up", ())] == 0
