"""Rules of this code base, enforced as tests (in the manner of CKAN's coding standards)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("portal", "tenants", "ingest_workers", "migrations") for p in (ROOT / d).rglob("*.py")]


def test_the_tenant_setting_is_only_ever_set_transaction_locally():
    offenders = []
    for path in SOURCES:
        source = path.read_text()
        if re.search(r"\bSET\s+(SESSION\s+)?app\.tenant_id", source, re.IGNORECASE):
            offenders.append(f"{path}: session-level SET")
        for call in re.findall(r"set_config\(\s*'app\.tenant_id'[^)]*\)", source):
            if not re.search(r",\s*true\s*\)$", call):
                offenders.append(f"{path}: {call}")
    assert offenders == []


def test_only_the_context_module_sets_the_tenant():
    setters = {p.relative_to(ROOT).as_posix() for p in SOURCES if "set_config('app.tenant_id'" in p.read_text()}
    assert setters == {"tenants/context.py"}


def test_app_never_connects_with_the_admin_or_owner_url():
    # Only bootstrap (admin), migrations and reference data (owner) may use them, and backups (admin: row-level
    # security hides tenant rows even from the owner, so pg_dump runs as the superuser).
    allowed = {"tenants/database.py", "portal/settings.py", "portal/cli.py", "migrations/env.py", "tenants/backup.py"}
    users = {
        p.relative_to(ROOT).as_posix() for p in SOURCES
        if re.search(r"admin_database_url|migration_database_url", p.read_text())
    }
    assert users <= allowed


def test_every_german_text_is_translated_once():
    # Two translations of one message id compile silently, and the page shows whichever comes last.
    po = (ROOT / "portal/translations/de/LC_MESSAGES/messages.po").read_text()
    ids = re.findall(r'^msgid ((?:".*"\n)+)msgstr', po, flags=re.M)
    duplicates = sorted({i for i in ids if ids.count(i) > 1 and i.strip() != '""'})
    assert duplicates == []
