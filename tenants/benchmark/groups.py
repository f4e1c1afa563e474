"""Comparison groups: all of Hessen, the tenant's Landkreis, its size class, its own peer group.

* **Hessen**: every participating tenant.
* **Landkreis**: the tenants whose official key has the same Kreis part
  (AGS digits 1–5, ``portal.regions.kreis_ags``), the district itself
  included. A kreisfreie Stadt is a Kreis of its own, so it has no Landkreis
  comparison.
* **Size class**: population bands of the official register (Destatis
  GV-ISys), see :data:`SIZE_CLASSES`; districts form a class of their own,
  because they offer other services than municipalities.
* **Peer group**: the tenants a tenant picks itself, plus the tenant. It is
  computed, protected and shown like any other group, so it appears only when
  it has enough contributors.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from tenants.refdata import district_name

HESSEN = "hessen"

#: (key, lower bound inclusive, upper bound exclusive or None, German label). Municipalities only.
SIZE_CLASSES = (
    ("size:lt5k", 0, 5_000, "Gemeinden unter 5.000 Einwohnern"),
    ("size:5k-10k", 5_000, 10_000, "Gemeinden mit 5.000 bis unter 10.000 Einwohnern"),
    ("size:10k-20k", 10_000, 20_000, "Städte und Gemeinden mit 10.000 bis unter 20.000 Einwohnern"),
    ("size:20k-50k", 20_000, 50_000, "Städte mit 20.000 bis unter 50.000 Einwohnern"),
    ("size:50k-100k", 50_000, 100_000, "Städte mit 50.000 bis unter 100.000 Einwohnern"),
    ("size:100k+", 100_000, None, "Großstädte ab 100.000 Einwohnern"),
)
DISTRICTS = ("size:districts", "Landkreise")


@dataclass(frozen=True)
class Member:
    """What the grouping needs to know about a tenant (all public reference data)."""

    tenant_id: int
    ags: str
    kind: str
    kreis_ags: str
    kreis_name: str
    population: int


def size_class(member: Member) -> tuple[str, str]:
    if member.kind == "landkreis":
        return DISTRICTS
    for key, low, high, label in SIZE_CLASSES:
        if member.population >= low and (high is None or member.population < high):
            return key, label
    raise ValueError(member.population)


def kreis_group(member: Member) -> tuple[str, str] | None:
    """The Landkreis a municipality belongs to; none for a kreisfreie Stadt or a Landkreis itself
    (districts are compared with each other in their own size class)."""
    if member.kind in ("kreisfreie_stadt", "landkreis") or not member.kreis_ags:
        return None
    # kreis_name is the official name (tenants.refdata.district_name): "Landkreis Fulda", "Vogelsbergkreis".
    return f"kreis:{member.kreis_ags}", district_name(member.kreis_name)


def peer_key(tenant_id: int) -> str:
    """An opaque key, so the published table does not say whose peer group a row belongs to.

    Keyed with the portal's secret: without it nobody can tell which key is whose. Rotating the
    secret renames the keys; the next refresh writes the new ones.
    """
    from flask import current_app

    secret = current_app.config["SECRET_KEY"].encode()
    return "peer:" + hmac.new(secret, f"peer-group-{tenant_id}".encode(), hashlib.sha256).hexdigest()[:20]


def groups_of(member: Member, has_peers: bool) -> list[tuple[str, str, str]]:
    """The (kind, key, label) of every group this tenant is compared with, in display order."""
    found = [("hessen", HESSEN, "Hessen")]
    kreis = kreis_group(member)
    if kreis:
        found.append(("kreis", *kreis))
    found.append(("size", *size_class(member)))
    if has_peers:
        found.append(("peer", peer_key(member.tenant_id), "Eigene Vergleichsgruppe"))
    return found


def build_groups(members: dict[int, Member], peers: dict[int, set[int]]) -> tuple[dict, dict]:
    """Every group's members (participants only) and labels: ({key: frozenset}, {key: (kind, label)})."""
    sets: dict[str, set[int]] = {}
    labels: dict[str, tuple[str, str]] = {}
    for member in members.values():
        for kind, key, label in groups_of(member, False):
            sets.setdefault(key, set()).add(member.tenant_id)
            labels[key] = (kind, label)
    for owner, chosen in peers.items():
        if owner not in members or not chosen:
            continue
        key = peer_key(owner)
        sets[key] = {owner} | {t for t in chosen if t in members}
        labels[key] = ("peer", "Eigene Vergleichsgruppe")
    return {k: frozenset(v) for k, v in sets.items()}, labels
