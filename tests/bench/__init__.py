"""Benchmarks: `make bench` runs every module listed in BENCHMARKS and writes docs/benchmarks.md.

A benchmark module has ``TITLE`` and ``run(settings) -> list[dict]``; each dict is one table
row (column name -> value); ``run`` may return ``{heading: rows}`` for several tables.
Benchmarks run against their own database (``<name>_bench``), never against the demo or test data.
Timings belong here, never in tests.
"""

BENCHMARKS = [
    "tests.bench.bench_rls",
    "tests.bench.bench_opendata",
    "tests.bench.bench_identity",
    "tests.bench.bench_superset",
    "tests.bench.bench_ingest",
    "tests.bench.bench_benchmark",
    "tests.bench.bench_up",
]
