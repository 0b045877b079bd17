"""Grafana dashboards as code for serve_core and the testbed.

``python -m dashboards.build`` writes ``dashboards/grafana/*.json`` and the provisioning files
from the declarations in ``dashboards/definitions.py``; see README.md, "Dashboards".
"""
