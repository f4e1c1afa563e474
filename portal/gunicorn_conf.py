"""gunicorn settings of the portal (``gunicorn -c python:portal.gunicorn_conf "portal:create_app()"``).

* Metrics: gunicorn runs several worker processes; each writes its metric values to files in
  ``EGOV_METRICS_DIR`` (prometheus_client's multiprocess mode, chosen by ``PROMETHEUS_MULTIPROC_DIR``,
  which must be set before any worker imports the library), and ``/metrics`` adds them up. The
  directory is emptied when gunicorn starts (old processes' counters would count twice) and a
  worker's live gauges are dropped when it exits.
* Logs: JSON lines on stderr (``tenants/logs.py``); the portal writes one line per request itself,
  with its request id, so gunicorn's access log stays off.

Workers, threads, bind address and timeout come from the command line (``scripts/run.sh``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tenants.settings import load_settings

_settings = load_settings()
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _settings.metrics_dir

accesslog = None


def on_starting(server) -> None:
    path = Path(_settings.metrics_dir)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    from tenants.logs import configure_logging

    configure_logging(_settings, "portal")


def post_fork(server, worker) -> None:
    from tenants.logs import configure_logging

    configure_logging(_settings, "portal")


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
