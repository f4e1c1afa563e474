"""Hessen's municipalities and districts: loaded, keyed and refreshable."""

import csv
import shutil

import pytest
from sqlalchemy import text

from tenants.refdata import DEFAULT_FILE, RefDataError, ars_from_ags, load_regions


@pytest.mark.parametrize(
    ("ags", "ars"),
    [
        ("06534014", "065340014014"),  # Marburg, Sonderstatusstadt
        ("06413000", "064130000000"),  # Offenbach, kreisfreie Stadt
        ("06439", "064390000000"),     # Rheingau-Taunus-Kreis
        ("06631009", "066310009009"),  # Fulda
    ],
)
def test_ars_is_derived_as_it_holds_in_hessen(ags, ars):
    assert ars_from_ags(ags) == ars


def test_all_443_are_loaded(owner_engine):
    with owner_engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT kind, count(*) FROM portal.regions GROUP BY kind")).all())
        marburg = conn.execute(text("SELECT name, kreis_name, ars FROM portal.regions WHERE ags = '06534014'")).one()
    assert sum(counts.values()) == 443
    assert counts["landkreis"] == 21
    assert tuple(marburg) == ("Marburg, Universitätsstadt", "Landkreis Marburg-Biedenkopf", "065340014014")


def _copy_with(tmp_path, edit):
    path = tmp_path / "regions.csv"
    shutil.copy(DEFAULT_FILE, path)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    edit(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_reload_refreshes_changed_rows_without_duplicates(owner_engine, tmp_path):
    def grow_marburg(rows):
        next(r for r in rows if r["ags"] == "06534014")["population"] = "80000"

    path = _copy_with(tmp_path, grow_marburg)
    try:
        with owner_engine.begin() as conn:
            assert load_regions(conn, path) == 443
        with owner_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM portal.regions")).scalar() == 443
            assert conn.execute(text("SELECT population FROM portal.regions WHERE ags='06534014'")).scalar() == 80000
    finally:
        with owner_engine.begin() as conn:
            load_regions(conn)


def test_a_broken_file_names_the_line_and_changes_nothing(owner_engine, tmp_path):
    def break_row(rows):
        rows[10]["population"] = "viele"
        rows[0]["population"] = "1"

    path = _copy_with(tmp_path, break_row)
    with pytest.raises(RefDataError, match="line 12"):
        with owner_engine.begin() as conn:
            load_regions(conn, path)
    with owner_engine.connect() as conn:
        first_ags = next(csv.DictReader(open(DEFAULT_FILE, encoding="utf-8")))["ags"]
        assert conn.execute(text("SELECT population FROM portal.regions WHERE ags=:a"), {"a": first_ags}).scalar() > 1


def test_districts_carry_their_official_names(app, clean_db):
    """"Bergstraße" is the Landkreis Bergstraße; a name that says "Kreis" itself stays as it is."""
    from tenants.refdata import read_regions

    regions = {r.ags: r for r in read_regions()}
    assert regions["06431"].name == "Landkreis Bergstraße" and regions["06435"].name == "Main-Kinzig-Kreis"
    assert regions["06431001"].kreis_name == "Landkreis Bergstraße"
    assert regions["06412000"].kreis_name == "Frankfurt am Main, Stadt"
    from tenants.context import tenant_transaction
    from tenants.registry import create_tenant

    with app.app_context(), tenant_transaction(None):
        assert create_tenant("06431", status="active").name == "Landkreis Bergstraße"
