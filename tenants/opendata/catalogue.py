"""The DCAT-AP.de 2.0 catalogue that GovData and opendata.hessen.de harvest.

Built with rdflib from the published entries. Paging follows ckanext-dcat (the
CKAN extension GovData runs): ``catalog.{ttl,rdf,jsonld}?page=N``, 100
datasets per page by default, and a ``hydra:PagedCollection`` node named after
the page URL with ``hydra:totalItems``, ``itemsPerPage``, ``firstPage``,
``lastPage`` and, where they exist, ``nextPage`` / ``previousPage``.

Vocabulary choices (docs/open-data.md):
* publisher: the municipality or district (``foaf:Organization``), Konv. 36;
* political geocoding from the official key: ``municipalityKey/<AGS>`` (districts
  ``districtKey/<AGS>``) and ``regionalKey/<ARS>``, level ``municipality`` or
  ``administrativeDistrict``, mirrored in ``dct:spatial`` (Konv. 11);
* theme GOVE, frequency MONTHLY, file types CSV and JSON;
* every distribution: licence IRI from the DCAT-AP.de licence list and
  ``dcatde:licenseAttributionByText`` (Konv. 31, 35); downloadURL = accessURL (Konv. 39);
* ``dcatde:contributorID`` from the setting EGOV_DCAT_CONTRIBUTOR_ID (Konv. 12/13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

from tenants.errors import NotFound
from tenants.opendata.datasets import DATASETS
from tenants.opendata.publication import LICENCES, PublishedEntry, Publisher

DCATDE = Namespace("http://dcat-ap.de/def/dcatde/")
DCATAP = Namespace("http://data.europa.eu/r5r/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
EU = "http://publications.europa.eu/resource/authority/"
GEO = "http://dcat-ap.de/def/politicalGeocoding/"

THEME_GOVE = URIRef(EU + "data-theme/GOVE")
MONTHLY = URIRef(EU + "frequency/MONTHLY")
AVAILABLE = URIRef(EU + "planned-availability/AVAILABLE")
#: Distributions: URL suffix -> (file type, media type, what the title says in brackets).
FILE_TYPES = {"csv": (URIRef(EU + "file-type/CSV"), "text/csv", "CSV"),
              "json": (URIRef(EU + "file-type/JSON"), "application/json", "JSON"),
              # The same table for German Excel: semicolons, decimal commas, German months, UTF-8 with BOM.
              "excel.csv": (URIRef(EU + "file-type/CSV"), "text/csv", "CSV für Excel")}

#: Serialisations: URL suffix -> (rdflib format, media type).
FORMATS = {
    "ttl": ("turtle", "text/turtle"),
    "rdf": ("pretty-xml", "application/rdf+xml"),
    "xml": ("pretty-xml", "application/rdf+xml"),
    "jsonld": ("json-ld", "application/ld+json"),
    "n3": ("n3", "text/n3"),
}


class PageNotFound(NotFound):
    """A catalogue page beyond the last: the portal answers 404."""


@dataclass(frozen=True)
class CatalogueSpec:
    """Where the catalogue lives and who stands behind it."""

    base_url: str  # the portal's public base URL, no trailing slash
    path: str  # "/catalog" (platform) or "/opendata/<ags>/catalog"
    title: str
    description: str
    publisher_name: str
    publisher_uri: str
    contributor_id: str = ""
    page_size: int = 100


def geocoding(tenant: Publisher) -> tuple[list[URIRef], URIRef]:
    """Political geocoding URIs and level from the official keys (Konv. 11)."""
    if tenant.is_district:
        return ([URIRef(f"{GEO}districtKey/{tenant.ags}"), URIRef(f"{GEO}regionalKey/{tenant.ars}")],
                URIRef(GEO + "Level/administrativeDistrict"))
    return ([URIRef(f"{GEO}municipalityKey/{tenant.ags}"), URIRef(f"{GEO}regionalKey/{tenant.ars}")],
            URIRef(GEO + "Level/municipality"))


def _graph() -> Graph:
    graph = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("dcatde", DCATDE), ("dcatap", DCATAP),
                       ("vcard", VCARD), ("hydra", HYDRA)):
        graph.bind(prefix, ns)
    return graph


def _datetime(value) -> Literal:
    return Literal(value.replace(microsecond=0).isoformat(), datatype=XSD.dateTime)


def tenant_page_url(base_url: str, ags: str) -> str:
    return f"{base_url}/opendata/{ags}"


def _publisher(graph: Graph, base_url: str, tenant: Publisher) -> URIRef:
    node = URIRef(f"{tenant_page_url(base_url, tenant.ags)}#publisher")
    graph.add((node, RDF.type, FOAF.Organization))
    graph.add((node, FOAF.name, Literal(tenant.name)))
    return node


def _add_dataset(graph: Graph, spec: CatalogueSpec, entry: PublishedEntry) -> URIRef:
    tenant, pub = entry.tenant, entry.publication
    meta = DATASETS[pub.dataset]
    landing = f"{tenant_page_url(spec.base_url, tenant.ags)}/{pub.dataset}"
    node = URIRef(f"{landing}#dataset")
    licence = LICENCES[pub.licence]
    add = graph.add
    add((node, RDF.type, DCAT.Dataset))
    add((node, DCTERMS.title, Literal(f"{meta.title} – {tenant.name}", lang="de")))
    add((node, DCTERMS.description, Literal(f"{meta.description} Herausgeber: {tenant.name} "
                                            f"(AGS {tenant.ags}). Werte unter 3 Fällen sind geheim gehalten.",
                                            lang="de")))
    add((node, DCTERMS.identifier, Literal(f"egovsad-{tenant.ags}-{pub.dataset}")))
    add((node, DCTERMS.publisher, _publisher(graph, spec.base_url, tenant)))
    uris, level = geocoding(tenant)
    for uri in uris:
        add((node, DCATDE.politicalGeocodingURI, uri))
        add((node, DCTERMS.spatial, uri))
    add((node, DCATDE.politicalGeocodingLevelURI, level))
    add((node, DCAT.theme, THEME_GOVE))
    add((node, DCTERMS.accrualPeriodicity, MONTHLY))
    add((node, DCTERMS.issued, _datetime(pub.issued)))
    add((node, DCTERMS.modified, _datetime(pub.modified)))
    add((node, DCAT.landingPage, URIRef(landing)))
    for keyword in meta.keywords:
        add((node, DCAT.keyword, Literal(keyword, lang="de")))
    if spec.contributor_id:
        add((node, DCATDE.contributorID, URIRef(spec.contributor_id)))
    contact = BNode()
    add((node, DCAT.contactPoint, contact))
    add((contact, RDF.type, VCARD.Organization))
    add((contact, VCARD.fn, Literal(tenant.name)))
    add((contact, VCARD.hasEmail, URIRef(f"mailto:{pub.contact_email}")))
    for suffix, (file_type, media_type, label) in FILE_TYPES.items():
        url = URIRef(f"{landing}.{suffix}")
        dist = URIRef(f"{landing}#{suffix.replace('.', '-')}")
        add((node, DCAT.distribution, dist))
        add((dist, RDF.type, DCAT.Distribution))
        add((dist, DCTERMS.title, Literal(f"{meta.title} – {tenant.name} ({label})", lang="de")))
        add((dist, DCAT.accessURL, url))
        add((dist, DCAT.downloadURL, url))
        add((dist, DCTERMS.format, file_type))
        add((dist, DCAT.mediaType, URIRef(f"http://www.iana.org/assignments/media-types/{media_type}")))
        add((dist, DCTERMS.license, URIRef(licence.uri)))
        add((dist, DCATDE.licenseAttributionByText, Literal(pub.attribution)))
        add((dist, DCTERMS.modified, _datetime(pub.modified)))
        add((dist, DCATAP.availability, AVAILABLE))
    return node


def page_count(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size))


def build_catalogue(spec: CatalogueSpec, entries: list[PublishedEntry], page: int, suffix: str,
                    query: str = "") -> Graph:
    """One page of the catalogue. :raise PageNotFound: the page does not exist.

    ``query`` (``modified_since=…&``) is repeated in the paging links so a harvester stays in its selection.
    """
    pages = page_count(len(entries), spec.page_size)
    if page < 1 or page > pages:
        raise PageNotFound(page)
    graph = _graph()
    catalogue = URIRef(f"{spec.base_url}{spec.path}")
    graph.add((catalogue, RDF.type, DCAT.Catalog))
    graph.add((catalogue, DCTERMS.title, Literal(spec.title, lang="de")))
    graph.add((catalogue, DCTERMS.description, Literal(spec.description, lang="de")))
    publisher = URIRef(spec.publisher_uri)
    graph.add((publisher, RDF.type, FOAF.Organization))
    graph.add((publisher, FOAF.name, Literal(spec.publisher_name)))
    graph.add((catalogue, DCTERMS.publisher, publisher))
    graph.add((catalogue, FOAF.homepage, URIRef(f"{spec.base_url}/opendata/")))
    if entries:
        graph.add((catalogue, DCTERMS.modified, _datetime(max(e.publication.modified for e in entries))))
    for entry in entries[(page - 1) * spec.page_size: page * spec.page_size]:
        graph.add((catalogue, DCAT.dataset, _add_dataset(graph, spec, entry)))
    _add_paging(graph, spec, len(entries), page, pages, suffix, query)
    return graph


def _add_paging(graph: Graph, spec: CatalogueSpec, total: int, page: int, pages: int, suffix: str,
                query: str = "") -> None:
    def url(n: int) -> str:
        return f"{spec.base_url}{spec.path}.{suffix}?{query}page={n}"

    node = URIRef(url(page))
    graph.add((node, RDF.type, HYDRA.PagedCollection))
    graph.add((node, HYDRA.totalItems, Literal(total, datatype=XSD.integer)))
    graph.add((node, HYDRA.itemsPerPage, Literal(spec.page_size, datatype=XSD.integer)))
    graph.add((node, HYDRA.firstPage, Literal(url(1))))
    graph.add((node, HYDRA.lastPage, Literal(url(pages))))
    if page < pages:
        graph.add((node, HYDRA.nextPage, Literal(url(page + 1))))
    if page > 1:
        graph.add((node, HYDRA.previousPage, Literal(url(page - 1))))


def serialise(graph: Graph, suffix: str) -> tuple[bytes, str]:
    rdf_format, media_type = FORMATS[suffix]
    return graph.serialize(format=rdf_format, encoding="utf-8"), media_type
