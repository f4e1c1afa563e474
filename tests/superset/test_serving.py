"""Superset's front-end files reach the browser compressed and are kept: a second visit downloads none of them."""

from __future__ import annotations

import re

import requests


def test_superset_bundles_come_compressed_and_are_kept_by_the_browser(superset):
    page = requests.get(f"{superset}/login/", timeout=30)
    bundles = re.findall(r'/static/assets/[^"\']+\.entry\.js', page.text)
    assert bundles, "the login page names no front-end bundle"
    answer = requests.get(superset + bundles[0], headers={"Accept-Encoding": "gzip"}, timeout=30, stream=True)
    assert answer.status_code == 200
    assert answer.headers.get("Content-Encoding") == "gzip"
    cache_control = answer.headers.get("Cache-Control", "")
    assert "immutable" in cache_control and "max-age=315360000" in cache_control


def test_the_dashboards_page_asks_superset_at_most_every_half_minute(monkeypatch):
    """A page view does not wait for a health probe: one answer is trusted for 30 s, silence for 5 s."""
    from tenants.superset import server

    probes: list[str] = []
    answers = iter([True, False])
    monkeypatch.setattr(server, "answers", lambda url, timeout: probes.append(url) or next(answers))
    clock = iter([0.0, 0.0, 10.0, 31.0, 31.0, 33.0])
    monkeypatch.setattr(server, "_clock", lambda: next(clock))
    monkeypatch.setattr(server, "_probes", {})
    url = "http://superset.invalid"
    assert server.answered_recently(url) is True  # asked
    assert server.answered_recently(url) is True  # 10 s later: trusted
    assert server.answered_recently(url) is False  # 31 s later: asked again, no answer
    assert server.answered_recently(url) is False  # 33 s: silence trusted briefly
    assert len(probes) == 2
