"""In the browser: an operator offboards a tenant and watches the archive being written by a real worker."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import MARBURG, add_operator, sign_in_browser


@pytest.mark.slow
def test_the_archive_is_written_by_a_worker_while_the_page_shows_it(
        app, two_tenants, live_server, page, settings, tmp_path, monkeypatch):
    archives = tmp_path / "archives"
    monkeypatch.setitem(app.config, "EGOV", dataclasses.replace(app.config["EGOV"], archive_dir=str(archives)))
    sign_in_browser(app, page, live_server.url, add_operator(app))

    page.goto(f"{live_server.url}/operator/tenants/{MARBURG}")
    page.locator("#reason-offboard").fill("Vertrag beendet")
    page.locator("button[value='offboard']").click()
    # The request returned at once; the archive waits for a worker.
    page.get_by_text("Archiv wird geschrieben").wait_for()
    expect(page.locator("#archive-progress-block")).to_contain_text("wartet auf einen Worker")

    env = {**os.environ, "EGOV_ENV": "test", "EGOV_DATABASE_NAME": settings.database_name,
           "EGOV_REDIS_URL": settings.redis_url, "EGOV_ARCHIVE_DIR": str(archives)}
    subprocess.run([str(Path(sys.executable).parent / "egov"), "worker", "--burst", "default"], env=env,
                   check=True, timeout=120, capture_output=True)

    # The page polls and shows the finished archive without a manual reload.
    link = page.get_by_role("link", name="Archiv herunterladen (CSV-Dateien in einem ZIP)")
    link.wait_for(timeout=15_000)
    expect(page.locator("#archive-progress-block")).to_have_count(0)
    with page.expect_download() as download:
        link.click()
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
        assert "manifest.json" in archive.namelist() and "portal.audit_log.csv" in archive.namelist()

    page.locator("#confirmation").fill(MARBURG)
    page.get_by_role("button", name="Daten endgültig löschen").click()
    page.get_by_text("Daten werden gelöscht").first.wait_for()
