"""Fair comparisons between municipalities (benchmarks); the method is in docs/benchmark.md.

* :mod:`.metrics` – what is compared and how one tenant's values come from its own rollups;
* :mod:`.groups` – Hessen, Landkreis, size class, peer group;
* :mod:`.aggregate` – window quartiles and their confidentiality (pure functions);
* :mod:`.participation` – opt-ins and peer groups (tenant settings, RLS);
* :mod:`.refresh` – the scheduled job's work: read per tenant, compute, replace the ``benchmark`` schema;
* :mod:`.comparison` – what one tenant's page shows.
"""

from tenants.benchmark.aggregate import BenchmarkRules
from tenants.confidentiality import Rules


def rules_from(settings) -> BenchmarkRules:
    """The thresholds from the settings (EGOV_CONFIDENTIALITY_*, EGOV_BENCHMARK_MIN_GROUP)."""
    return BenchmarkRules(Rules(settings.confidentiality_min_cases, settings.confidentiality_min_contributors),
                          settings.benchmark_min_group)
