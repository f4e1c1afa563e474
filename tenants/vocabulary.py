"""German labels of the canonical codes: the one place a code becomes words a clerk reads.

The codes themselves are defined in :mod:`tenants.canonical` (the loader checks them, the
database CHECKs them). Their labels live here, and every place that shows a code reads them from
here: the comparison page and its metric names (:mod:`tenants.benchmark.metrics`) and the
Superset datasets, whose SQL joins a ``VALUES`` list rendered from these dictionaries
(:func:`values_sql`, used by :mod:`tenants.superset.templates`), so a chart shows "Kreditkarte",
never ``credit_card``, and a changed label reaches the dashboards through the template
fingerprint like any other edit.

Each dictionary maps a code (str) to its German label (str). ``unknown`` stands for rows without
a value (the empty string in the analytics tables).
"""

from __future__ import annotations

PAYMENT_METHODS = {
    "paypal": "PayPal", "credit_card": "Kreditkarte", "sepa_direct_debit": "SEPA-Lastschrift",
    "giropay": "giropay", "paydirekt": "paydirekt", "wero": "Wero", "invoice": "Rechnung",
    "cash": "Bar/vor Ort", "on_site": "Bar/vor Ort", "free_of_charge": "kostenfrei", "other": "Sonstige",
    "unknown": "unbekannt",
}
PAYMENT_PROVIDERS = {
    "epaybl": "ePayBL", "pmpayment": "pmPayment", "girosolution": "GiroSolution", "epay21": "epay21 (ekom21)",
    "other": "anderer Anbieter", "unknown": "unbekannt",
}
AUTH_METHODS = {
    "none": "ohne Anmeldung", "guest": "ohne Anmeldung", "bundid_basis": "BundID Basisregistrierung",
    "bundid_elster": "BundID mit ELSTER-Zertifikat", "bundid_eid": "BundID mit Online-Ausweis",
    "eu_eid": "EU-eID", "muk_elster": "Mein Unternehmenskonto", "other_portal_account": "anderes Servicekonto",
    "other": "anderes Verfahren", "unknown": "unbekannt",
}
TRUST_LEVELS = {"none": "keines", "basis": "Basis", "substanziell": "Substanziell", "hoch": "Hoch",
                "unknown": "unbekannt"}
CHANNELS = {"web": "Web", "ios": "iOS-App", "android": "Android-App", "unknown": "unbekannt"}
#: The comparison (tenants/benchmark): the metric families a tenant takes part in, and the kinds of
#: group it is compared with (tenants/benchmark/groups.py; ``own`` is the tenant's own value).
BENCHMARK_FAMILIES = {"usage": "Nutzung, Abschluss und Abbruch", "payment": "Bezahlverfahren",
                      "authentication": "Anmeldeverfahren und Vertrauensniveaus", "satisfaction": "Zufriedenheit",
                      "unknown": "unbekannt"}
GROUP_KINDS = {"own": "Eigene Kommune", "hessen": "ganz Hessen", "kreis": "Landkreis", "size": "Größenklasse",
               "peer": "Eigene Vergleichsgruppe", "unknown": "unbekannt"}

#: Every vocabulary by the name the dataset SQL uses for it (``{vocabulary:<name>}``).
VOCABULARIES: dict[str, dict[str, str]] = {
    "payment_method": PAYMENT_METHODS, "payment_provider": PAYMENT_PROVIDERS, "auth_method": AUTH_METHODS,
    "trust_level": TRUST_LEVELS, "channel": CHANNELS, "benchmark_family": BENCHMARK_FAMILIES,
    "group_kind": GROUP_KINDS,
}


def label(vocabulary: str, code: str | None) -> str:
    """The German label of ``code`` in ``vocabulary`` (a key of :data:`VOCABULARIES`).

    An empty or missing code is ``unknown``; a code without a label is returned as it is (the
    ``test_every_code_has_a_label`` test keeps that from happening for canonical codes).
    Raises KeyError for an unknown vocabulary name.
    """
    labels = VOCABULARIES[vocabulary]
    return labels.get(code or "unknown", code or labels["unknown"])


def sql_text(value: str) -> str:
    """A constant as an SQL string literal (quotes doubled); for the constants of this project only."""
    return "'" + value.replace("'", "''") + "'"


def values_sql(vocabulary: str) -> str:
    """``(VALUES ('code', 'Label'), …)`` of one vocabulary, for a join in a dataset's SQL.

    Only the constants above are rendered (quoted), never input. The empty string is listed as
    ``unknown``'s label so rows without a value join too.
    """
    labels = VOCABULARIES[vocabulary]
    rows = [(code, text) for code, text in labels.items()] + [("", labels["unknown"])]
    return "(VALUES " + ", ".join(f"({sql_text(code)}, {sql_text(text)})" for code, text in rows) + ")"
