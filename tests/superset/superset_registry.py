"""Superset's own registry of endpoints and views, written as JSON (run with Superset's Python).

    .venv-superset/bin/python tests/superset/superset_registry.py OUT.json

Builds Superset's app with the platform's superset_config.py (the environment comes from
``tenants.superset.server.environment``) and lists every URL rule with its methods, its
arguments and the Flask-AppBuilder view that serves it (class, model, permission name), plus the
OpenAPI document Superset generates for its REST API. The boundary matrix
(tests/superset/test_boundary_matrix.py) is generated from this, so an endpoint a Superset
upgrade adds is tried the day it appears.
"""

import json
import sys


def main(path: str) -> None:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset.extensions import appbuilder

        views = {}
        for view in appbuilder.baseviews:
            blueprint = getattr(view, "blueprint", None)
            datamodel = getattr(view, "datamodel", None)
            views[blueprint.name if blueprint is not None else type(view).__name__] = {
                "class": type(view).__name__,
                "model": datamodel.obj.__name__ if datamodel is not None else None,
                "permission": getattr(view, "class_permission_name", None),
            }
        rules = [{"rule": rule.rule, "methods": sorted(rule.methods - {"HEAD", "OPTIONS"}),
                  "endpoint": rule.endpoint, "args": sorted(rule.arguments),
                  "view": views.get(rule.endpoint.split(".")[0])}
                 for rule in app.url_map.iter_rules()]
        with app.test_request_context():
            # What /api/v1/_openapi serves, built the way Flask-AppBuilder builds it there.
            from flask_appbuilder.api import BaseApi
            from flask_appbuilder.api.manager import OpenApi

            api_spec = OpenApi._create_api_spec("v1")  # noqa: SLF001
            for view in appbuilder.baseviews:
                if isinstance(view, BaseApi) and view.version == "v1":
                    view.add_api_spec(api_spec)
            spec = api_spec.to_dict()
    with open(path, "w") as out:
        json.dump({"rules": rules, "openapi": spec}, out)


if __name__ == "__main__":
    main(sys.argv[1])
