"""Upgrade drill: the previous release's code builds and fills a database, its worker drains while the
migration job (``egov db upgrade --wait-for-workers``) brings the schema to head, and the new worker takes
the jobs the old portal queued. Nothing may be lost.

The previous release is a commit of this repository (``git archive``), run from a directory of its own with
this checkout's virtual environment (its imports come first on ``PYTHONPATH``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tenants.settings import PROJECT_ROOT, load_settings
from tests.conftest import _database_at_head

#: The last commit before migration 0010: schema 0009, the release this one upgrades from.
PREVIOUS_RELEASE = "79d847d50db2ccb66cb7793b4bfd676abca830a0"
PREVIOUS_HEAD = "0009"
HUNDESTEUER = "99102013104000"
HEADER = ("event_id,occurred_at,service_key,session_id,event_type,step_no,step_name,channel,payment_method,"
          "payment_provider,auth_method,trust_level")

#: Runs in the previous release's tree: database at its schema, a tenant with figures and a person, one
#: file loaded, two more accepted by the "portal" and queued for the workers.
SEED = r"""
import json, sys
from pathlib import Path
from sqlalchemy import create_engine
from portal import create_app
from portal.settings import load_settings
from tenants.context import tenant_transaction
from tenants.database import bootstrap, drop_database, upgrade
from tenants.models import Tenant, DataSource, User
from tenants.refdata import load_regions
from tenants.registry import create_tenant
from tenants.superset.demo import seed_rollups
from ingest_workers.runs import accept_batch, enqueue_run, load_file, spool_bytes
from ingest_workers.sources import create_source

settings = load_settings()
drop_database(settings); bootstrap(settings); upgrade(settings)
engine = create_engine(settings.sqlalchemy_url(settings.migration_database_url))
with engine.begin() as conn:
    load_regions(conn)
app = create_app()
files = [Path(p) for p in sys.argv[1:]]
with app.app_context():
    with tenant_transaction(None):
        tenant_id = create_tenant("06534014", status="active").id
    with tenant_transaction(tenant_id) as session:
        seed_rollups(session, tenant_id, days=60, scale=1, seed=7)
        session.add(User(tenant_id=tenant_id, subject="editor-upgrade", role="editor", email="editor@marburg.de",
                         display_name="Editor Marburg"))
        source_id = create_source(session, tenant_id, settings, "Formularserver", "upload").id
    load_file(tenant_id, source_id, files[0])
    queued = []
    for path in files[1:]:
        spooled, key = spool_bytes(tenant_id, [path.read_bytes()], ".csv")
        with tenant_transaction(tenant_id) as session:
            source = session.get(DataSource, (tenant_id, source_id))
            run, _ = accept_batch(session, session.get(Tenant, tenant_id), source, key, spooled, "csv", path.name,
                                  "upgrade-drill")
            queued.append(run.id)
        enqueue_run(tenant_id, queued[-1])
print(json.dumps({"tenant_id": tenant_id, "queued": queued}))
"""


def events_file(path: Path, day: int, sessions: int) -> Path:
    lines = [HEADER] + [f",2026-03-{day:02d}T09:{i % 60:02d}:00+01:00,{HUNDESTEUER},d{day}s{i},started,,,web,,,,"
                        for i in range(sessions)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def previous_release(tmp_path) -> Path:
    """The previous release's files, unpacked from git."""
    archive = subprocess.run(["git", "-C", str(PROJECT_ROOT), "archive", "--format=tar", PREVIOUS_RELEASE],
                             capture_output=True)
    if archive.returncode != 0:
        shallow = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--is-shallow-repository"],
                                 capture_output=True, text=True).stdout.strip() == "true"
        if shallow:  # a CI checkout with --depth: the previous release is not there to upgrade from
            pytest.skip("The upgrade drill needs the repository's history; this clone is shallow "
                        "(git fetch --unshallow)")
        pytest.fail("The previous release cannot be unpacked from git: " + archive.stderr.decode(errors="replace"))
    tree = tmp_path / "previous"
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


@pytest.fixture
def upgrade_env(database, tmp_path):
    """The environment of both releases: a database of its own, the same secrets, a Redis database of its own."""
    from tenants.database import drop_database
    from tenants.jobs import redis_connection

    env = {**os.environ, "EGOV_DATABASE_NAME": database.database_name + "_upgrade",
           "EGOV_VAR_DIR": str(database.var_dir),
           "EGOV_REDIS_URL": database.redis_url.rsplit("/", 1)[0] + "/13"}
    settings = load_settings(env)
    redis = redis_connection(settings.redis_url)
    redis.flushdb()
    yield env, settings
    redis.flushdb()
    drop_database(settings)


def old(tree: Path, env: dict, *args: str, **kwargs):
    """A process of the previous release."""
    return subprocess.Popen([sys.executable, *args], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def working(settings, worker) -> None:
    """Wait until the old worker runs a job (it is in RQ's started registry then, which the migration job waits
    for), or has run them all. A stop signal while it is idle may catch it in the middle of taking a job; RQ
    brings such a job back a minute later (its intermediate queue, docs/operations.md), too late for a test."""
    from rq import Queue, Worker

    from tenants.jobs import redis_connection, running_jobs

    connection = redis_connection(settings.redis_url)
    for _ in range(600):
        if any(w.get_state() == "busy" for w in Worker.all(connection=connection)):
            return
        queue = Queue("default", connection=connection)
        if not (queue.count or queue.intermediate_queue.get_job_ids() or running_jobs(connection, ("default",))):
            return
        if worker.poll() is not None:
            pytest.fail("the previous release's worker ended: " + worker.stderr.read()[-3000:])
        time.sleep(0.05)
    pytest.fail("the previous release's worker did not start")


def test_upgrade_from_the_previous_release_while_its_workers_drain(previous_release, upgrade_env, tmp_path):
    from ingest_workers.worker import run_worker
    from portal import create_app
    from tenants.backup import table_counts

    env, settings = upgrade_env
    files = [events_file(tmp_path / f"march-{day}.csv", day, 40 + day) for day in (2, 3, 4)]
    seed = old(previous_release, env, "-c", SEED, *map(str, files))
    out, err = seed.communicate(timeout=600)
    assert seed.returncode == 0, err[-3000:]
    seeded = json.loads(out.strip().splitlines()[-1])
    before = table_counts(settings, settings.database_name)
    engine = create_engine(settings.sqlalchemy_url(settings.migration_database_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar_one() == PREVIOUS_HEAD
    assert before["analytics.process_events"] == 42 and len(seeded["queued"]) == 2

    # The old worker starts on the queue; the migration job waits until it has drained (it is told to stop,
    # finishes the job it has begun and exits), then migrates. Jobs it never began stay queued.
    worker = old(previous_release, env, "-c", "from portal.cli import main; main()", "worker", "default")
    working(settings, worker)
    worker.send_signal(signal.SIGTERM)
    migrate = subprocess.run([str(Path(sys.executable).parent / "egov"), "db", "upgrade", "--wait-for-workers",
                              "120"], env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    assert worker.wait(timeout=120) == 0, worker.stderr.read()[-3000:]

    # The new release's worker takes what is left in the queue.
    app = create_app(settings=settings)
    run_worker(app, ["default"], burst=True, with_scheduler=False)

    assert _database_at_head(settings)
    engine = create_engine(settings.sqlalchemy_url(settings.migration_database_url))
    with engine.connect() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, false)"), {"t": str(seeded["tenant_id"])})
        runs = conn.execute(text("SELECT status, error FROM portal.ingest_runs ORDER BY id")).all()
        people = conn.execute(text("SELECT email FROM portal.users")).scalars().all()
    engine.dispose()
    assert [tuple(run) for run in runs] == [("succeeded", None)] * 3 and people == ["editor@marburg.de"]
    after = table_counts(settings, settings.database_name)
    lost = {table: (rows, after.get(table)) for table, rows in before.items() if after.get(table, 0) < rows}
    assert lost == {}
    assert after["analytics.process_events"] == 42 + 43 + 44
