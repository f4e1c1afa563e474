"""What an operator's Prometheus sees after an upload: rows accepted and rejected, the run's duration, the
data source's last success, and the job id on every log line the job wrote (real portal, real worker, real
metrics servers over HTTP)."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tenants import metrics
from tenants.logs import configure_logging
from tests.ingest.conftest import sign_in
from tests.ingest.test_upload_and_api import CSV, upload, work


def scrape(url: str, **headers) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a metrics endpoint."""
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.status_code
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


@pytest.fixture
def worker_metrics(app):
    """The worker's metrics server (as ``egov worker`` starts it), on a free loopback port."""
    server = metrics.serve(app.config["EGOV"], "worker", port=0)
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


@pytest.fixture
def scheduler_metrics(app):
    """The scheduler's metrics server with its state collector (as ``egov scheduler`` starts it)."""
    registry = CollectorRegistry()
    registry.register(metrics.StateCollector(app, max_age=0))
    server = metrics.serve(app.config["EGOV"], "scheduler", registry=registry, port=0)
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


@pytest.fixture
def log_file(app, tmp_path):
    """Every log line of this process and of the work-horses it forks, as the processes write them."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    path = tmp_path / "egov.log"
    with path.open("a", buffering=1) as stream:
        configure_logging(app.config["EGOV"], "worker", stream=stream)
        yield path
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_an_upload_shows_in_the_metrics(app, sources, two_tenants, worker_metrics, scheduler_metrics):
    rows = [("egov_ingest_rows_total", (("outcome", outcome),)) for outcome in ("accepted", "rejected")]
    runs = ("egov_ingest_run_duration_seconds_count", (("outcome", "succeeded"),))
    last = ("egov_ingest_last_success_timestamp_seconds",
            (("kind", "upload"), ("source", str(sources.a)), ("tenant", two_tenants.a.ags)))
    before = scrape(worker_metrics)
    assert last not in scrape(scheduler_metrics)  # never loaded yet

    client = sign_in(app, two_tenants.a.id, "editor")
    run_url = upload(client, two_tenants.a.ags, sources.a, CSV.encode()).headers["Location"]
    work(app)

    after = scrape(worker_metrics)
    assert after[rows[0]] - before.get(rows[0], 0) == 2
    assert after[rows[1]] - before.get(rows[1], 0) == 1
    assert after[runs] - before.get(runs, 0) == 1
    job = ("egov_jobs_total", (("job", "process_run"), ("status", "finished")))
    assert after[job] - before.get(job, 0) == 1
    state = scrape(scheduler_metrics)
    finished = client.get(run_url + "/status").get_json()["finished_at"]
    assert state[last] == pytest.approx(datetime.fromisoformat(finished).timestamp(), abs=1)
    # The other tenant's source never loaded: no figure for it, and no other tenant's label at all.
    assert {dict(labels)["tenant"] for name, labels in state if name == last[0]} == {two_tenants.a.ags}
    assert state[("egov_queue_up", ())] == 1 and state[("egov_database_up", ())] == 1

    # A file that cannot be read at all is a failed run, and the source's last success stays.
    failed = ("egov_ingest_runs_total", (("outcome", "failed"),))
    upload(client, two_tenants.a.ags, sources.a, b"Ereignis;Datum\nkeine Spalten, die passen\n", "kaputt.csv")
    work(app)
    assert scrape(worker_metrics)[failed] - after.get(failed, 0) == 1
    assert scrape(scheduler_metrics)[last] == state[last]


def test_every_log_line_of_a_job_carries_its_id(app, sources, two_tenants, log_file):
    client = sign_in(app, two_tenants.a.id, "editor")
    upload(client, two_tenants.a.ags, sources.a, CSV.encode())
    work(app)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    job_ids = {line["job_id"] for line in lines if line["message"].startswith("ingest run ")}
    assert len(job_ids) == 1 and next(iter(job_ids)).startswith(f"ingest-{two_tenants.a.id}-")
    job_id = job_ids.pop()
    # RQ's own lines about the job too, before and after its function ran (the line that announces the
    # dequeued job names it in its text, and without the job's arguments).
    about_the_job = [line for line in lines if line["logger"].startswith("rq.") and "(ingest-" in line["message"]]
    assert len(about_the_job) >= 1 and all(line["job_id"] and line["job_id"] in line["message"]
                                           for line in about_the_job)
    announced = [line for line in lines if line["logger"] == "rq.worker" and line["message"].endswith(f": {job_id}")]
    assert announced and "process_run" not in announced[0]["message"]
    assert all(line["process"] == "worker" and line["level"] and line["time"] for line in lines)
