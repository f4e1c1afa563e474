"""Offboarding work that does not belong in a request: the archive and the purge, as RQ jobs.

Offboarding a tenant (``lifecycle.change_status``) queues :func:`archive_job`, which writes every
row the tenant owns as CSV files in a ZIP (``tenants/archive.py``) to
``<EGOV_ARCHIVE_DIR>/<tenant id>/``, which portal and workers share (like the ingest spool). The
operator downloads it from the tenant's page, then asks for the purge with the second
confirmation (the AGS typed in); :func:`purge_job` undoes provisioning, deletes every row in one
transaction and deletes the archive too, so nothing of the tenant stays behind.

Both jobs report their progress in the RQ job (``meta["progress"]``: phase, tables done, of how
many), which the operator's page shows while it works (:func:`offboarding_state`), and both are
idempotent and restartable: the archive is written to a temporary name and renamed when whole,
so a killed job leaves the previous archive (or none), and running it again writes it anew; the
purge deletes in one transaction, so a killed purge deleted nothing, and a second purge finds
nothing left to delete. Each is retried twice on its own; the operator can start either again.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l

from tenants import archive, audit
from tenants.context import platform_transaction
from tenants.db import db
from tenants.lifecycle import LifecycleError
from tenants.models import Tenant, TenantStatus
from tenants.settings import get_settings

log = logging.getLogger(__name__)

QUEUE = "default"
TIMEOUT = 3600
RETRIES = 2
ARCHIVE, PURGE = "archive", "purge"


def job_id(kind: str, tenant_id: int) -> str:
    return f"offboard-{kind}-{int(tenant_id)}"


def archive_path(tenant_id: int, ags: str) -> Path:
    """Where the tenant's archive lies (it may not exist yet)."""
    return Path(get_settings().archive_dir) / str(int(tenant_id)) / f"egovsad-{ags}-archiv.zip"


# -- starting -------------------------------------------------------------------------------------

def start_archive(tenant_id: int, actor: str):
    """Queue the archive job (after the offboarding is committed); a job already queued or running is kept."""
    from tenants.jobs import enqueue

    return enqueue(archive_job, tenant_id, actor, queue=QUEUE, timeout=TIMEOUT, retries=RETRIES,
                   job_id=job_id(ARCHIVE, tenant_id))


def request_purge(tenant: Tenant, confirmation: str, *, actor: str, remote_addr: str | None = None) -> None:
    """Check the second confirmation and record the request in the platform audit log; the caller
    commits, then queues the job with :func:`start_purge`.

    :raise LifecycleError: not offboarded, or the confirmation is not the tenant's AGS.
    """
    if tenant.status != TenantStatus.OFFBOARDED:
        raise LifecycleError(_l("Only an offboarded tenant's data can be purged."))
    if (confirmation or "").strip() != tenant.ags:
        raise LifecycleError(_l("Type the AGS %(ags)s to confirm.", ags=tenant.ags))
    audit.record("tenant.purge_requested", actor=actor, target=tenant.ags, remote_addr=remote_addr)


def start_purge(tenant_id: int, actor: str, remote_addr: str | None = None):
    """Queue the purge job; a purge already queued or running is kept."""
    from tenants.jobs import enqueue

    return enqueue(purge_job, tenant_id, actor, remote_addr, queue=QUEUE, timeout=TIMEOUT, retries=RETRIES,
                   job_id=job_id(PURGE, tenant_id))


# -- the jobs -------------------------------------------------------------------------------------

def _reporter(phase: str) -> Callable[[int, int], None]:
    """Progress into the running job's meta (nothing outside a job: the CLI, a benchmark)."""
    from rq import get_current_job

    job = get_current_job()

    def report(done: int, total: int) -> None:
        if job is not None:
            job.meta["progress"] = {"phase": phase, "done": done, "total": total}
            job.save_meta()

    return report


def _offboarded(tenant_id: int) -> str | None:
    """The tenant's AGS while it is offboarded, else None (the job then has nothing to do)."""
    with platform_transaction() as session:
        tenant = session.get(Tenant, tenant_id)
        return tenant.ags if tenant is not None and tenant.status == TenantStatus.OFFBOARDED else None


def archive_job(tenant_id: int, actor: str) -> dict[str, Any]:
    """Write the tenant's archive (the RQ job). Returns ``{"status", "rows", "tables"}``."""
    ags = _offboarded(tenant_id)
    if ags is None:
        return {"status": "not offboarded"}
    path = archive_path(tenant_id, ags)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    progress = _reporter(ARCHIVE)
    # One snapshot for every table: the archive is consistent even if something still wrote.
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin(), \
            partial.open("wb") as out:
        counts = archive.write_archive(conn, tenant_id, ags, out, progress=progress)
    partial.replace(path)
    rows = sum(counts.values())
    with platform_transaction():
        audit.record("tenant.archive_created", actor=actor, tenant_id=tenant_id, target=ags,
                     details={"rows": rows, "bytes": path.stat().st_size})
    log.info("archive of tenant %s written: %s rows in %s tables", tenant_id, rows, len(counts))
    return {"status": "succeeded", "rows": rows, "tables": len(counts)}


def purge_job(tenant_id: int, actor: str, remote_addr: str | None = None) -> dict[str, Any]:
    """Undo provisioning, delete every row of the tenant and its archive (the RQ job).

    The purge goes to the platform audit log: the tenant's own log is purged with the rest.
    Returns ``{"status", "rows", "tables": {table: rows deleted}}``.
    """
    from tenants.provisioning import deprovision_tenant

    ags = _offboarded(tenant_id)
    if ags is None:
        return {"status": "not offboarded"}
    progress = _reporter(PURGE)
    progress(0, 0)
    deprovision_tenant(tenant_id)
    with platform_transaction() as session:
        deleted = archive.purge(session.connection(), tenant_id, progress=progress)
        rows = sum(deleted.values())
        audit.record("tenant.purged", actor=actor, target=ags, remote_addr=remote_addr,
                     details={"rows": rows, "tables": {k: v for k, v in deleted.items() if v}})
    _remove_archive(tenant_id, ags)
    log.info("tenant %s purged: %s rows", tenant_id, rows)
    return {"status": "succeeded", "rows": rows, "tables": deleted}


def _remove_archive(tenant_id: int, ags: str) -> None:
    path = archive_path(tenant_id, ags)
    for stale in (path, path.with_name(path.name + ".part")):
        stale.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # not empty or gone: nothing of ours is left either way


# -- what the operator's page shows ---------------------------------------------------------------

def offboarding_state(tenant: Tenant) -> dict[str, Any]:
    """The archive (ready or not, when written, size, rows) and both jobs' states, for the page and its polling.

    ``busy`` is true while either job is queued or running.
    """
    path = archive_path(tenant.id, tenant.ags)
    ready = None
    if path.exists():
        stat = path.stat()
        ready = {"created_at": datetime.fromtimestamp(stat.st_mtime, UTC),
                 "bytes": stat.st_size, "rows": _manifest_rows(path)}
    from tenants.jobs import job_state, redis_connection

    redis = redis_connection(get_settings().redis_url)
    jobs = {kind: job_state(job_id(kind, tenant.id), redis) for kind in (ARCHIVE, PURGE)}
    busy = any(j is not None and j["status"] in ("queued", "started", "scheduled", "deferred")
               for j in jobs.values())
    return {"archive": ready, "jobs": jobs, "busy": busy}


def _manifest_rows(path: Path) -> int | None:
    try:
        with zipfile.ZipFile(path) as zf:
            return sum(json.loads(zf.read("manifest.json"))["rows"].values())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
