"""The nightly benchmark refresh (scheduled in ingest_workers/cron.py)."""

from __future__ import annotations

from flask import current_app

from tenants.benchmark import rules_from
from tenants.benchmark.refresh import refresh


def refresh_benchmarks() -> dict:
    """Compute the comparison figures of the months not compared yet (published figures stay as they are)."""
    return refresh(rules_from(current_app.config["EGOV"]))
