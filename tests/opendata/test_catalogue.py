"""The DCAT-AP.de catalogue as a harvester (GovData, opendata.hessen.de) reads it."""

from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF

from tenants.context import platform_transaction
from tenants.opendata.catalogue import DCATDE, HYDRA
from tenants.opendata.datasets import DATASETS
from tenants.opendata.validation import SHACL_DIR, validate
from tenants.registry import create_tenant

from .conftest import CONTRIBUTOR, PAGE_SIZE, publish

RDF_FORMATS = {"ttl": "turtle", "rdf": "xml", "jsonld": "json-ld"}
KREIS = "06534"  # Landkreis Marburg-Biedenkopf


@pytest.fixture
def published(app, marburg_data, staff):
    """Marburg publishes all five datasets, the Landkreis two: seven datasets, four pages of two."""
    with app.app_context(), platform_transaction():
        kreis = create_tenant(KREIS, status="active")
        kreis = type(marburg_data.a)(id=kreis.id, ags=kreis.ags)
    assert publish(staff(marburg_data.a), marburg_data.a.ags, DATASETS).status_code == 302
    assert publish(staff(kreis), KREIS, ["usage", "satisfaction"], licence="cc-by/4.0",
                   email="daten@marburg-biedenkopf.de").status_code == 302
    return marburg_data


def fetch_all_pages(client, path: str, suffix: str) -> tuple[Graph, list[Graph]]:
    """Follow hydra:nextPage from the first page, as ckanext-dcat's harvester does."""
    merged, pages = Graph(), []
    url = f"{path}.{suffix}?page=1"
    while url:
        response = client.get(url)
        assert response.status_code == 200, url
        page = Graph().parse(data=response.data, format=RDF_FORMATS[suffix])
        pages.append(page)
        merged += page
        paging = next(page.subjects(RDF.type, HYDRA.PagedCollection))
        following = page.value(paging, HYDRA.nextPage)
        url = str(following).replace("http://127.0.0.1:5000", "") if following else None
    return merged, pages


@pytest.mark.parametrize("suffix", list(RDF_FORMATS))
def test_platform_catalogue_conforms_to_dcat_ap_de(client, published, suffix):
    graph, _ = fetch_all_pages(client, "/catalog", suffix)
    conforms, report = validate(graph)
    assert conforms, report


def test_tenant_catalogue_conforms_and_says_who_and_where(client, published):
    graph, _ = fetch_all_pages(client, "/opendata/06534/catalog", "ttl")
    conforms, report = validate(graph)
    assert conforms, report
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == 2
    for ds in datasets:
        assert graph.value(ds, DCATDE.politicalGeocodingLevelURI) == URIRef(
            "http://dcat-ap.de/def/politicalGeocoding/Level/administrativeDistrict")
        assert URIRef("http://dcat-ap.de/def/politicalGeocoding/districtKey/06534") in set(
            graph.objects(ds, DCATDE.politicalGeocodingURI))
        assert graph.value(ds, DCATDE.contributorID) == URIRef(CONTRIBUTOR)
        publisher = graph.value(ds, DCTERMS.publisher)
        assert "Marburg-Biedenkopf" in str(graph.value(publisher, URIRef("http://xmlns.com/foaf/0.1/name")))
        for dist in graph.objects(ds, DCAT.distribution):
            assert graph.value(dist, DCTERMS.license) == URIRef("http://dcat-ap.de/def/licenses/cc-by/4.0")
            assert graph.value(dist, DCATDE.licenseAttributionByText)


def test_the_negative_example_fails_for_its_known_reasons():
    graph = Graph().parse(SHACL_DIR / "negative-example-simple.ttl", format="turtle")
    conforms, report = validate(graph)
    assert not conforms
    assert "K01" in report  # contact point without e-mail


def test_every_dataset_carries_the_required_metadata(client, published):
    graph, _ = fetch_all_pages(client, "/catalog", "ttl")
    marburg = [d for d in graph.subjects(RDF.type, DCAT.Dataset) if "/06534014/" in str(d)]
    assert len(marburg) == 5
    for ds in marburg:
        assert graph.value(ds, DCAT.theme) == URIRef("http://publications.europa.eu/resource/authority/data-theme/GOVE")
        assert graph.value(ds, DCTERMS.accrualPeriodicity) == URIRef(
            "http://publications.europa.eu/resource/authority/frequency/MONTHLY")
        assert {str(u) for u in graph.objects(ds, DCATDE.politicalGeocodingURI)} == {
            "http://dcat-ap.de/def/politicalGeocoding/municipalityKey/06534014",
            "http://dcat-ap.de/def/politicalGeocoding/regionalKey/065340014014"}
        assert graph.value(ds, DCTERMS.issued) and graph.value(ds, DCTERMS.modified)
        contact = graph.value(ds, DCAT.contactPoint)
        assert str(graph.value(contact, URIRef("http://www.w3.org/2006/vcard/ns#hasEmail"))) == \
            "mailto:opendata@marburg.de"
        distributions = list(graph.objects(ds, DCAT.distribution))
        assert len(distributions) == 3  # CSV, JSON and the CSV for German Excel
        for dist in distributions:
            assert graph.value(dist, DCTERMS.license) == URIRef("http://dcat-ap.de/def/licenses/dl-by-de/2.0")
            assert str(graph.value(dist, DCATDE.licenseAttributionByText)) == "Marburg, Universitätsstadt"


def test_the_three_serialisations_carry_the_same_graph(client, published):
    graphs = {}
    for suffix, rdf_format in RDF_FORMATS.items():
        response = client.get(f"/opendata/06534014/catalog.{suffix}?page=2")
        assert response.status_code == 200
        graph = Graph().parse(data=response.data, format=rdf_format)
        # Paging nodes name their own format's URLs; everything else must be identical.
        for paging in list(graph.subjects(RDF.type, HYDRA.PagedCollection)):
            graph.remove((paging, None, None))
        graphs[suffix] = graph
        again = Graph().parse(data=graph.serialize(format=rdf_format), format=rdf_format)
        assert isomorphic(graph, again)
    assert isomorphic(graphs["ttl"], graphs["rdf"])
    assert isomorphic(graphs["ttl"], graphs["jsonld"])
    assert len(set(graphs["ttl"].subjects(RDF.type, DCAT.Dataset))) == PAGE_SIZE


def test_paging_returns_every_dataset_exactly_once(client, published):
    _, pages = fetch_all_pages(client, "/catalog", "ttl")
    seen = [ds for page in pages for ds in page.subjects(RDF.type, DCAT.Dataset)]
    assert len(seen) == len(set(seen)) == 7
    assert len(pages) == 4
    first = pages[0]
    paging = next(first.subjects(RDF.type, HYDRA.PagedCollection))
    assert first.value(paging, HYDRA.totalItems).toPython() == 7
    assert first.value(paging, HYDRA.itemsPerPage).toPython() == PAGE_SIZE
    assert first.value(paging, HYDRA.lastPage) == Literal("http://127.0.0.1:5000/catalog.ttl?page=4")
    assert first.value(paging, HYDRA.previousPage) is None
    assert client.get("/catalog.ttl?page=5").status_code == 404
    assert client.get("/catalog.ttl?page=0").status_code == 400
    assert client.get("/catalog.ttl?page=x").status_code == 400


def test_without_a_contributor_id_none_is_claimed(database, published, redis_conn):
    from portal import create_app

    plain = create_app({"TESTING": True}, settings=database).test_client()
    graph = Graph().parse(data=plain.get("/catalog.ttl").data, format="turtle")
    assert not list(graph.objects(None, DCATDE.contributorID))


def test_the_shapes_ship_with_their_attribution():
    attribution = (SHACL_DIR / "ATTRIBUTION.md").read_text()
    for shape in Path(SHACL_DIR).glob("*.ttl"):
        assert shape.name in attribution


def test_modified_since_selects_recent_changes_and_pages_within_them(client, published):
    everything, _ = fetch_all_pages(client, "/catalog", "ttl")
    assert len(set(everything.subjects(RDF.type, DCAT.Dataset))) == 7
    future = client.get("/catalog.ttl?modified_since=2999-01-01")
    assert future.status_code == 200
    assert not list(Graph().parse(data=future.data, format="turtle").subjects(RDF.type, DCAT.Dataset))
    past = Graph().parse(data=client.get("/catalog.ttl?modified_since=2000-01-01T00:00:00").data, format="turtle")
    paging = next(past.subjects(RDF.type, HYDRA.PagedCollection))
    assert str(past.value(paging, HYDRA.nextPage)).endswith("?modified_since=2000-01-01T00%3A00%3A00&page=2")
    assert client.get("/catalog.ttl?modified_since=yesterday").status_code == 400
    assert client.get("/catalog.n3").status_code == 200
