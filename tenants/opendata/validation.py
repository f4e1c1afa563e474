"""Validating the catalogue offline against the DCAT-AP.de 2.0 SHACL shapes (pyshacl).

Combines the files in ``shacl/`` the way the official validator does (see
shacl/ATTRIBUTION.md): the shapes are the DCAT-AP 2.1.1 core shapes plus the
four DCAT-AP.de files; the ontology graph is FOAF + vCard + Org with RDFS
inference.

Controlled vocabularies: the shapes check ``skos:inScheme`` for licences,
political geocoding, themes, file types and frequencies. The official
vocabulary files cannot be fetched here, so :func:`vocabulary_membership` adds
the membership triples for exactly the IRIs a graph uses, by the namespace
each list in the DCAT-AP.de 2.0 specification defines. This is stated in
docs/open-data.md. It never vouches for an IRI outside those namespaces (the
negative example's licence, say), so such a graph still fails.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import SKOS

SHACL_DIR = Path(__file__).with_name("shacl")
SHAPE_FILES = ("dcat-ap_2.1.1_shacl_shapes.ttl", "dcat-ap-spec-german-messages.ttl",
               "dcat-ap-spec-german-additions.ttl", "dcat-ap-de-deprecated.ttl", "dcat-ap-konventionen.ttl")
ONTOLOGY_FILES = (("foaf_0_1.rdf", "xml"), ("vcard.ttl", "turtle"), ("org.ttl", "turtle"))

EU = "http://publications.europa.eu/resource/authority/"
GEO = "http://dcat-ap.de/def/politicalGeocoding/"

#: Concept scheme -> the IRIs of its members (from the DCAT-AP.de 2.0 lists).
SCHEMES = {
    "http://dcat-ap.de/def/licenses": ("http://dcat-ap.de/def/licenses/dl-by-de/2.0",
                                       "http://dcat-ap.de/def/licenses/dl-zero-de/2.0",
                                       "http://dcat-ap.de/def/licenses/cc-by/4.0"),
    GEO + "Level": (GEO + "Level/municipality", GEO + "Level/administrativeDistrict", GEO + "Level/state",
                    GEO + "Level/federal"),
    EU + "data-theme": (EU + "data-theme/GOVE",),
    EU + "file-type": (EU + "file-type/CSV", EU + "file-type/JSON"),
    EU + "frequency": (EU + "frequency/MONTHLY",),
    EU + "planned-availability": (EU + "planned-availability/AVAILABLE",),
}
#: Schemes whose members follow a rule rather than a short list: the official keys.
KEY_SCHEMES = (GEO + "municipalityKey", GEO + "regionalKey", GEO + "districtKey", GEO + "stateKey",
               "http://dcat-ap.de/def/contributors")


@cache
def _shapes() -> Graph:
    graph = Graph()
    for name in SHAPE_FILES:
        graph.parse(SHACL_DIR / name, format="turtle")
    return graph


@cache
def _ontology() -> Graph:
    graph = Graph()
    for name, fmt in ONTOLOGY_FILES:
        graph.parse(SHACL_DIR / name, format=fmt)
    return graph


def vocabulary_membership(data: Graph) -> Graph:
    """``skos:inScheme`` triples for the controlled IRIs ``data`` uses."""
    members = Graph()
    used = {o for o in data.objects() if isinstance(o, URIRef)}
    for scheme, iris in SCHEMES.items():
        for iri in used & {URIRef(i) for i in iris}:
            members.add((iri, SKOS.inScheme, URIRef(scheme)))
    for iri in used:
        for scheme in KEY_SCHEMES:
            if str(iri).startswith(scheme + "/") and str(iri)[len(scheme) + 1:]:
                members.add((iri, SKOS.inScheme, URIRef(scheme)))
    return members


def validate(data: Graph) -> tuple[bool, str]:
    """Validate ``data``; returns (conforms, the textual report). Violations fail, warnings do not."""
    from pyshacl import validate as shacl_validate

    # The membership triples go into (a copy of) the data graph, where the shapes look for them.
    conforms, _, report = shacl_validate(data + vocabulary_membership(data), shacl_graph=_shapes(),
                                         ont_graph=_ontology(), inference="rdfs",
                                         abort_on_first=False, allow_warnings=True, advanced=True)
    return conforms, report
