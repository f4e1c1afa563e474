"""Apache Superset for eGovSAD: its process (``server``), its REST API
(``client``), tenant provisioning (``provision``), dashboard templates
(``templates``) and guest tokens for embedded dashboards (``guest``).

Superset runs in its own virtual environment (``.venv-superset``) with its
configuration in ``superset_config/``; the portal only talks HTTP to it.
"""
