"""Helpers shared by benchmarks: a fresh database, timing with median and p95."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from sqlalchemy import create_engine


def fresh_database(settings):
    """Drop, bootstrap and migrate the benchmark database; return (owner engine, app engine)."""
    from tenants.database import rebuild

    rebuild(settings)
    owner = create_engine(settings.sqlalchemy_url(settings.migration_database_url))
    return owner, create_engine(settings.sqlalchemy_url())


def timed(func: Callable[[], object], runs: int = 7, warmup: int = 1) -> dict[str, float]:
    """Median and p95 wall-clock milliseconds of ``func`` over ``runs`` runs after ``warmup``."""
    for _ in range(warmup):
        func()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return {"median_ms": round(statistics.median(samples), 2), "p95_ms": round(p95, 2)}
