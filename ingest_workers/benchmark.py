"""The nightly benchmark refresh (scheduled in ingest_workers/cron.py)."""

from __future__ import annotations

from tenants.benchmark import rules_from
from tenants.benchmark.refresh import refresh
from tenants.settings import get_settings


def refresh_benchmarks() -> dict:
    """Compute the comparison figures of the months not compared yet (published figures stay as they are)."""
    return refresh(rules_from(get_settings()))
