"""How long `make up` takes, phase by phase, as scripts/phases.sh recorded it in the checkout's var/log: the first
`make up` of a checkout (a fresh clone: both virtual environments, the npm packages, the database, the demo data,
Superset and every demo tenant's provisioning), and the latest one (which skips what is there). Set
EGOV_BENCH_UP_CHECKOUT to report another checkout's runs (a clone made for the measurement). Debian's packages
(PostgreSQL, Redis, Node.js, Chromium) are installed by `make up` only when missing; on the measuring machine they
were there, so a bare Debian adds their `apt-get install`.
"""

from __future__ import annotations

import os
from pathlib import Path

TITLE = "Starting the platform: `make up` by phase"
FIRST, LATEST = "up-phases-first.tsv", "up-phases.tsv"


def _phases(path: Path) -> tuple[str, list[dict]]:
    """(the run's note, one row per phase); scripts/phases.sh writes ``phase<TAB>seconds`` and a ``#`` note."""
    if not path.exists():
        return "", [{"phase": "not recorded in this checkout", "seconds": ""}]
    note, rows = "", []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            note = line.lstrip("# ")
        elif "\t" in line:
            phase, seconds = line.split("\t")
            rows.append({"phase": phase, "seconds": seconds,
                         "minutes": f"{float(seconds) / 60:.1f}" if phase == "total" else ""})
    return note, rows


def run(settings) -> dict[str, list[dict]]:
    from tenants.settings import PROJECT_ROOT

    log = Path(os.environ.get("EGOV_BENCH_UP_CHECKOUT", PROJECT_ROOT)) / "var" / "log"
    note, first = _phases(log / FIRST)
    _, latest = _phases(log / LATEST)
    tables = {f"First `make up` of a fresh clone ({note})" if note else "First `make up` of a fresh clone": first}
    if latest != first:
        tables["Latest `make up`"] = latest
    return tables
