"""A bounded schemathesis run against the OpenAPI document the portal serves (/api/v1/openapi.json).

Every operation gets generated requests, valid and invalid (bodies, ids, headers): no answer may be a
server error, and every answer must be one the document describes (status, content type, headers,
schema); valid requests must be accepted, and authentication must not be ignored. Municipality, data
source and token are each the real one or a generated one, so generated ids and bodies also reach
the checks behind the tenant and the authentication. Runs in-process against the WSGI app.

One built-in check is left out on purpose: "schema-violating request accepted". A batch whose
structure is wrong is refused as a whole (422), but the values of its events and aggregates (an
unknown event type, a date in 3100) are checked when the batch is loaded, and each bad one is
rejected on its own with its number, field and reason (docs/data-format.md): a batch with one bad
event answers 202, by design.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.ingest.conftest import sign_in
from tests.ingest.test_upload_and_api import _push_source

#: Examples per operation: bounded, so that the suite stays fast (three operations).
EXAMPLES = 100


@pytest.fixture
def push_source(app, two_tenants):
    admin = sign_in(app, two_tenants.a.id, "admin")
    source_id, token, _ = _push_source(app, admin, two_tenants.a.ags)
    return {"ags": two_tenants.a.ags, "source_id": source_id, "token": token}


OPERATIONS = [("POST", "/api/v1/t/{ags}/sources/{source_id}/batches"),
              ("GET", "/api/v1/t/{ags}/sources/{source_id}/batches/{run_id}")]


def test_the_document_lists_the_operations_tested_here(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert sorted((m.upper(), p) for p, item in paths.items() for m in item) == sorted(OPERATIONS)


@pytest.mark.parametrize("method, path", OPERATIONS)
def test_the_api_answers_every_request_as_its_document_says(app, push_source, method, path):
    # Loaded from the served document, driven by Hypothesis directly (schemathesis' own pytest
    # fixture loader does not work with pytest 9).
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = next(op.ok() for op in api.get_all_operations()
                     if op.ok().method.upper() == method and op.ok().path == path)
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    mostly = st.sampled_from([True, True, True, False])  # a stranger's AGS ends at the first 404
    @given(case=cases, real=st.fixed_dictionaries({"ags": mostly, "source_id": st.booleans(), "token": mostly}))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    def answers_as_documented(case, real):
        # Each of municipality, data source and token is the real one or the generated one: so that
        # generated ids and bodies also reach the code behind the tenant and the authentication.
        for name in ("ags", "source_id"):
            if real[name] and case.path_parameters and name in case.path_parameters:
                case.path_parameters[name] = push_source[name]
        headers = {"Authorization": f"Bearer {push_source['token']}"} if real["token"] else {}
        case.call_and_validate(headers=headers, excluded_checks=[negative_data_rejection])

    answers_as_documented()
