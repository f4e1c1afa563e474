"""In the browser: a tenant admin uploads a German office CSV, watches the progress, reads the errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import sign_in_browser
from tests.ingest.conftest import add_source, rows
from tests.ingest.test_profiles import CIVENTO


@pytest.mark.slow
def test_upload_progress_errors_and_figures(app, two_tenants, live_server, page, settings, tmp_path):
    from tenants.context import tenant_transaction
    from tenants.models import User

    a = two_tenants.a
    with app.app_context():
        add_source(a.id, "civento Statistik", profile="civento")
        with tenant_transaction(a.id) as session:
            user = User(tenant_id=a.id, subject="admin", email="admin@marburg.de", role="admin")
            session.add(user)
            session.flush()
            identity = f"u:{a.id}:{user.id}"
    sign_in_browser(app, page, live_server.url, identity)
    upload = tmp_path / "civento-märz.csv"
    upload.write_bytes(CIVENTO.encode("cp1252"))

    page.goto(f"{live_server.url}/t/{a.ags}/data/")
    page.get_by_label("Datenquelle", exact=True).select_option(label="civento Statistik (civento-Statistikexport)")
    page.get_by_label("Datei", exact=True).set_input_files(str(upload))
    page.get_by_role("button", name="Hochladen und übernehmen").click()
    page.get_by_text("wird gleich verarbeitet").wait_for()

    env = {**os.environ, "EGOV_ENV": "test", "EGOV_DATABASE_NAME": settings.database_name,
           "EGOV_REDIS_URL": settings.redis_url}
    subprocess.run([str(Path(sys.executable).parent / "egov"), "worker", "--burst", "default"], env=env,
                   check=True, timeout=120, capture_output=True)

    # The page polls the status and shows the result without a manual reload.
    page.get_by_role("heading", name="Abgewiesene Zeilen").wait_for(timeout=15_000)
    expect(page.locator("[data-field='rows_rejected']")).to_have_text("1")
    expect(page.locator("table")).to_contain_text("dieses Datum gibt es nicht")
    with page.expect_download() as download:
        page.get_by_role("link", name="Alle abgewiesenen Zeilen als CSV herunterladen").click()
    content = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert content.splitlines()[0] == "Zeile;Spalte;Grund" and content.splitlines()[1].startswith("4;Datum;")
    assert rows(app, a.id, "SELECT sum(started) FROM analytics.rollup_service_daily") == [(1216,)]
