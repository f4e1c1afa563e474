"""The demo's comparison tenants: created once, opted in once, a withdrawal respected, data through a generator."""

from __future__ import annotations

from demo.comparison import COMPARISON_MEMBERS, seed_comparison_demo
from tenants.benchmark import participation
from tenants.benchmark.groups import Member, size_class
from tenants.context import platform_transaction, tenant_transaction
from tenants.models import Region


def test_demo_adds_about_forty_municipalities_of_every_size(app, clean_db):
    generated = []
    with app.app_context():
        first = seed_comparison_demo(generate=generated.append)
        assert first["created"] == len(COMPARISON_MEMBERS) >= 38
        assert len(generated) == first["created"]
        with platform_transaction() as session:
            members = [Member(0, r.ags, r.kind, r.kreis_ags, r.kreis_name, r.population)
                       for r in (session.get(Region, ags) for ags in COMPARISON_MEMBERS)]
        assert len({size_class(m)[0] for m in members}) >= 4
        assert sum(m.kreis_ags == "06534" for m in members) >= 9  # quartiles for Marburg-Biedenkopf

        some = generated[0]
        with tenant_transaction(some) as session:
            assert participation.opted_in(session, some) == {"usage", "payment", "authentication", "satisfaction"}
            participation.set_families(session, some, set(), "admin")
        again = seed_comparison_demo(generate=generated.append)
        assert again["created"] == 0 and not again["opted_in"]
        with tenant_transaction(some) as session:
            assert participation.opted_in(session, some) == set()
