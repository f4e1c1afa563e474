"""Rules of this code base, enforced as tests (in the manner of CKAN's coding standards)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("portal", "tenants", "ingest_workers", "demo", "migrations") for p in (ROOT / d).rglob("*.py")]


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
    allowed = {"tenants/database.py", "tenants/settings.py", "portal/cli.py", "migrations/env.py", "tenants/backup.py"}
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


#: Which runtime may import which: the core library imports nothing above it, the worker not the web app, the
#: demo is reached only from the CLI and the tests (docs/architecture.md, "Runtime roles and folders").
FORBIDDEN_IMPORTS = {
    "tenants": {"portal", "ingest_workers", "demo"},
    "ingest_workers": {"portal", "demo"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level package names a module imports anywhere (also inside functions); relative imports excluded."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def layer_violations(root: Path = ROOT) -> list[str]:
    return sorted(
        f"{path.relative_to(root).as_posix()} imports {package}"
        for layer, forbidden in FORBIDDEN_IMPORTS.items()
        for path in (root / layer).rglob("*.py")
        for package in imported_packages(path) & forbidden
    )


def test_the_core_imports_nothing_above_it():
    assert layer_violations() == []


def test_the_layer_rule_sees_an_import_inside_a_function(tmp_path):
    # A rule test that cannot fail is a defect: a core module that reaches up to the web app is found.
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "bad.py").write_text("def f():\n    from portal.sessions import x\n    import demo.data\n")
    (tmp_path / "ingest_workers").mkdir()
    (tmp_path / "ingest_workers" / "ok.py").write_text("from tenants.jobs import enqueue\n")
    assert layer_violations(tmp_path) == ["tenants/bad.py imports demo", "tenants/bad.py imports portal"]


def fetch_helper_violations(root: Path = ROOT) -> list[str]:
    """Core functions that fetch one of a tenant's objects (``get_<thing>``/``find_<thing>`` with a
    ``tenant_id`` parameter) but do not take ``(session, tenant_id, ...)``: the one fetch convention
    (docs/architecture.md), so no helper reaches for a global session or opens its own transaction."""
    found = []
    for path in sorted((root / "tenants").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith(("get_", "find_", "list_")):
                continue
            names = [a.arg for a in node.args.args]
            if "tenant_id" in names and names[:2] != ["session", "tenant_id"]:
                found.append(f"{path.relative_to(root)}:{node.name}({', '.join(names)})")
    return found


def test_every_fetch_helper_takes_the_session_and_the_tenant():
    assert fetch_helper_violations() == []


def test_the_fetch_rule_sees_a_helper_without_a_session(tmp_path):
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "bad.py").write_text(
        "def get_user(tenant_id, user_id):\n    pass\n\ndef get_run(session, tenant_id, run_id):\n    pass\n")
    assert fetch_helper_violations(tmp_path) == ["tenants/bad.py:get_user(tenant_id, user_id)"]


def _files_containing(pattern: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in SOURCES if re.search(pattern, p.read_text()))


def test_settings_are_read_through_the_one_accessor():
    # get_settings() (or settings_of(app) where a process holds its app), never the app's config by hand.
    assert _files_containing(r"""config\[["']EGOV["']\]""") == ["tenants/settings.py"]


def test_only_the_job_facade_builds_redis_clients():
    # One cached client per URL and process (tenants.jobs.redis_connection); a client per call opened a pool each.
    assert _files_containing(r"\bRedis(\.from_url)?\(|\bStrictRedis\b|redis\.from_url\(") == ["tenants/jobs.py"]
