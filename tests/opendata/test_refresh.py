"""The daily job keeps dct:modified true to the published content."""

from datetime import UTC, datetime

from rdflib import Graph
from rdflib.namespace import DCTERMS

from ingest_workers.opendata import refresh_open_data
from tenants.context import tenant_transaction
from tenants.opendata.publication import Publication

from .conftest import HUNDESTEUER, month_day, publish

LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def _modified(client) -> str:
    graph = Graph().parse(data=client.get("/opendata/06534014/catalog.ttl").data, format="turtle")
    return str(next(graph.objects(None, DCTERMS.modified)))


def test_new_data_moves_dct_modified_without_any_download(app, client, marburg_data, staff, rollups):
    publish(staff(marburg_data.a), "06534014", ["usage"])
    with app.app_context():
        assert refresh_open_data() == 1
        with tenant_transaction(marburg_data.a.id) as session:
            pub = session.get(Publication, (marburg_data.a.id, "usage"))
            pub.published_at = pub.data_modified_at = LONG_AGO
        refresh_open_data()
    assert _modified(client) == "2026-01-01T00:00:00+00:00"  # nothing changed, nothing moves
    rollups(marburg_data.a.id, "rollup_service_daily", [
        {"service_key": HUNDESTEUER, "day": month_day(1, 27), "started": 10, "submitted": 10, "aborted": 0}])
    with app.app_context():
        refresh_open_data()
    assert _modified(client) > "2026-01-02"
