"""Official reference data: Hessen's municipalities and districts.

Loaded from the Destatis excerpt shipped in tenants/data (or a newer one an
operator supplies) by ``egov refdata load``. Loading is an upsert, so it can
be repeated to refresh names and populations; rows are never deleted because
tenants reference them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

DEFAULT_FILE = Path(__file__).with_name("data") / "hessen_gebietskoerperschaften.csv"
KINDS = {"kreisfreie_stadt", "stadt", "gemeinde", "landkreis"}


class RefDataError(ValueError):
    """The file cannot be loaded; names the line and the problem."""


def ars_from_ags(ags: str) -> str:
    """Derive the 12-digit ARS from the AGS, as it holds in Hessen.

    The ARS inserts a 4-digit Gemeindeverband between Kreis and Gemeinde.
    Hessen has no Gemeindeverbände (no Ämter or Verbandsgemeinden), so every
    municipality is its own: ``0`` + its 3-digit Gemeinde number
    (Marburg 06534014 → 065340014014). A kreisfreie Stadt has Gemeinde 000
    (Frankfurt 06412000 → 064120000000), and a district's ARS is its 5-digit
    key padded with zeros (06439 → 064390000000). Other Länder need the ARS
    from the register: give an ``ars`` column in the file.
    """
    if re.fullmatch(r"\d{5}", ags):
        return ags + "0" * 7
    if not re.fullmatch(r"\d{8}", ags):
        raise RefDataError(f"not an AGS: {ags!r}")
    gemeinde = ags[5:]
    return ags[:5] + ("0000" if gemeinde == "000" else "0" + gemeinde) + gemeinde


@dataclass(frozen=True)
class RegionRow:
    ags: str
    ars: str
    name: str
    kind: str
    kreis_ags: str
    kreis_name: str
    population: int
    postal_code: str | None
    longitude: float | None
    latitude: float | None


def _optional_float(value: str) -> float | None:
    return float(value) if value.strip() else None


def district_name(name: str) -> str:
    """A Landkreis as it is officially written: "Bergstraße" is the "Landkreis Bergstraße", a name that
    says "Kreis" itself ("Main-Kinzig-Kreis", "Odenwaldkreis") stands alone. Idempotent."""
    name = name.strip()
    if not name or name.lower().endswith("kreis") or name.startswith("Landkreis "):
        return name
    return f"Landkreis {name}"


def read_regions(path: Path = DEFAULT_FILE) -> list[RegionRow]:
    """Parse and validate the whole file before anything is written."""
    rows: list[RegionRow] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for line_no, raw in enumerate(csv.DictReader(fh), start=2):
            try:
                ags = raw["ags"].strip()
                kind = raw["kind"].strip()
                if kind not in KINDS:
                    raise RefDataError(f"unknown kind {kind!r}")
                rows.append(
                    RegionRow(
                        ags=ags,
                        ars=(raw.get("ars") or "").strip() or ars_from_ags(ags),
                        # The register's short names of districts become the official ones.
                        name=district_name(raw["name"]) if kind == "landkreis" else raw["name"].strip(),
                        kind=kind,
                        kreis_ags=raw["kreis_ags"].strip(),
                        kreis_name=(raw["kreis_name"].strip() if kind == "kreisfreie_stadt"
                                    else district_name(raw["kreis_name"])),
                        population=int(raw["population"]),
                        postal_code=(raw.get("postal_code") or "").strip() or None,
                        longitude=_optional_float(raw.get("longitude") or ""),
                        latitude=_optional_float(raw.get("latitude") or ""),
                    )
                )
            except (KeyError, ValueError) as exc:
                raise RefDataError(f"{path.name}, line {line_no}: {exc}") from exc
    if not rows:
        raise RefDataError(f"{path.name}: no rows")
    return rows


_UPSERT = text(
    """
    INSERT INTO portal.regions (ags, ars, name, kind, kreis_ags, kreis_name, population,
                                postal_code, longitude, latitude, loaded_at)
    VALUES (:ags, :ars, :name, :kind, :kreis_ags, :kreis_name, :population,
            :postal_code, :longitude, :latitude, now())
    ON CONFLICT (ags) DO UPDATE SET
        ars = EXCLUDED.ars, name = EXCLUDED.name, kind = EXCLUDED.kind,
        kreis_ags = EXCLUDED.kreis_ags, kreis_name = EXCLUDED.kreis_name,
        population = EXCLUDED.population, postal_code = EXCLUDED.postal_code,
        longitude = EXCLUDED.longitude, latitude = EXCLUDED.latitude, loaded_at = now()
    """
)


def load_regions(connection, path: Path = DEFAULT_FILE) -> int:
    """Upsert every row of ``path`` in the connection's transaction; returns the count.

    Runs as the schema owner: the application role may only read regions.
    """
    rows = read_regions(path)
    connection.execute(_UPSERT, [row.__dict__ for row in rows])
    return len(rows)
