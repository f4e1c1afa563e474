"""Scripts that ask for JSON get a plain 401 when not signed in; browsers are sent to sign in (portal/access.py)."""

from __future__ import annotations


def test_a_script_gets_401_and_a_browser_the_sign_in_page(client, two_tenants):
    url = f"/t/{two_tenants.a.ags}/"
    script = client.get(url, headers={"Accept": "application/json"})
    assert script.status_code == 401 and script.get_json() == {"error": "not signed in"}
    browser = client.get(url, headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 302 and "login" in browser.headers["Location"]
