"""The feedback endpoint's limit per public key: 300 submissions per hour, whoever sends them.

docs/data-format.md ("Feedback widget"): "10 submissions per minute and 100 per day per address,
300 per hour per key". The per-address limit is tested in test_feedback.py; this floods one key
from many addresses (a botnet would), each of them below its own limit.
"""

from __future__ import annotations

from tenants.ingest import feedback
from tests.ingest.conftest import rows, sign_in
from tests.ingest.test_feedback import ORIGIN, _form, _send

PER_KEY = 300
PER_ADDRESS_MINUTE = 10


def _endpoint(app, ags: str, admin, name: str) -> str:
    response = admin.post(f"/t/{ags}/data/sources", data={"name": name, "kind": "feedback", "origins": ORIGIN})
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    return page.split('data-endpoint="', 1)[1].split('"', 1)[0].replace("http://127.0.0.1:5000", "")


def _from(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_one_key_takes_300_submissions_an_hour_from_any_number_of_addresses(app, two_tenants, monkeypatch):
    monkeypatch.setattr(feedback, "MIN_SECONDS", 0)  # no person waits between form and submission here
    admin = sign_in(app, two_tenants.a.id, "admin")
    flooded = _endpoint(app, two_tenants.a.ags, admin, "Zufriedenheit Hundesteuer")
    other = _endpoint(app, two_tenants.a.ags, admin, "Zufriedenheit Meldewesen")
    statuses = []
    for n in range(PER_KEY // PER_ADDRESS_MINUTE):
        client = _from(app, f"198.51.100.{n + 1}")
        for _ in range(PER_ADDRESS_MINUTE):
            statuses.append(_send(client, flooded, _form(client, flooded).get_json()["token"]).status_code)
    assert statuses == [201] * PER_KEY
    fresh = _from(app, "203.0.113.7")  # an address that sent nothing yet
    assert _send(fresh, flooded, _form(fresh, flooded).get_json()["token"]).status_code == 429
    # The limit is the key's: the municipality's other widget and the fresh address still work.
    assert _send(fresh, other, _form(fresh, other).get_json()["token"]).status_code == 201
    assert rows(app, two_tenants.a.id, "SELECT count(*) FROM analytics.feedback") == [(PER_KEY + 1,)]
