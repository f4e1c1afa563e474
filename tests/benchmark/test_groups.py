"""Which comparison groups a member belongs to, by kind of Gebietskörperschaft."""

from __future__ import annotations

from tenants.benchmark.groups import DISTRICTS, HESSEN, Member, build_groups, groups_of
from tenants.superset.guest import benchmark_clause

TOWN = Member(1, "06534014", "stadt", "06534", "Marburg-Biedenkopf", 77_000)
CITY = Member(2, "06412000", "kreisfreie_stadt", "", "", 770_000)
DISTRICT = Member(3, "06439", "landkreis", "", "", 187_000)


def test_a_town_is_compared_in_its_landkreis_a_city_and_a_district_in_none():
    assert [key for _, key, _ in groups_of(TOWN, False)][:2] == [HESSEN, "kreis:06534"]
    for member in (CITY, DISTRICT):
        assert not any(key.startswith("kreis:") for _, key, _ in groups_of(member, False))
    assert [key for _, key, _ in groups_of(DISTRICT, False)] == [HESSEN, DISTRICTS[0]]


def test_no_group_without_a_landkreis_and_every_key_fits_a_dashboard_rule():
    groups, labels = build_groups({m.tenant_id: m for m in (TOWN, CITY, DISTRICT)}, {})
    assert groups["kreis:06534"] == {TOWN.tenant_id}
    assert "kreis:" not in groups and all(label != "Landkreis " for _, label in labels.values())
    for member in (TOWN, CITY, DISTRICT):  # the guest token's clause accepts every key a member has
        benchmark_clause([key for _, key, _ in groups_of(member, False)])
