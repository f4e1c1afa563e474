"""How long `make up` takes, phase by phase, as scripts/phases.sh recorded it in the checkout's var/log: the first
`make up` of a checkout (a fresh clone: both virtual environments, the npm packages, the database, the demo data,
Superset and every demo tenant's provisioning), and the latest one (which skips what is there). Set
EGOV_BENCH_UP_CHECKOUT to report another checkout's runs (a clone made for the measurement).
"""

from __future__ import annotations

import os
from pathlib import Path

TITLE = "Starting the platform: `make up` by phase"
FIRST, LATEST = "up-phases-first.tsv", "up-phases.tsv"


def _phases(path: Path, run: str) -> list[dict]:
    if not path.exists():
        return [{"run": run, "phase": "not recorded in this checkout", "seconds": "", "minutes": ""}]
    rows, note = [], ""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            note = line.lstrip("# ")
        elif "\t" in line:
            phase, seconds = line.split("\t")
            rows.append({"run": f"{run} ({note})" if note else run, "phase": phase, "seconds": seconds,
                         "minutes": f"{float(seconds) / 60:.1f}" if phase == "total" else ""})
    return rows


def run(settings) -> list[dict]:
    from tenants.settings import PROJECT_ROOT

    log = Path(os.environ.get("EGOV_BENCH_UP_CHECKOUT", PROJECT_ROOT)) / "var" / "log"
    return _phases(log / FIRST, "first make up of a fresh clone") + _phases(log / LATEST, "latest make up")
