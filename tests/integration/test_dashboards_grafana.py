"""`serve-core dashboards push` against a real Grafana, when one is given: GRAFANA_URL and a
credential (GRAFANA_TOKEN, a service account token with the Editor role, or GRAFANA_USER with
GRAFANA_PASSWORD), and optionally GRAFANA_DATASOURCE (default "Prometheus": the name of a
Prometheus data source there) and GRAFANA_FOLDER (default "serve-core").

No Grafana can run on this project's machines (no image, no package), so without GRAFANA_URL
the test is skipped, saying so; tests/unit/test_dashboards_push.py checks what a push sends
against a fake. Pushes twice and reads the dashboards back through Grafana's API."""

from __future__ import annotations

import os

import pytest

from dashboards import cli
from dashboards.definitions import all_dashboards
from dashboards.grafana_model import DATASOURCE_VARIABLE
from dashboards.push import Credential, Grafana

pytestmark = pytest.mark.skipif(
    not os.environ.get("GRAFANA_URL"),
    reason="no Grafana to push to: set GRAFANA_URL (and GRAFANA_TOKEN, or GRAFANA_USER with GRAFANA_PASSWORD) "
           "to run this against a real Grafana",
)


def test_push_twice_and_read_back(capsys):
    url = os.environ["GRAFANA_URL"]
    datasource = os.environ.get("GRAFANA_DATASOURCE", "Prometheus")
    folder = os.environ.get("GRAFANA_FOLDER", "serve-core")
    user = os.environ.get("GRAFANA_USER")
    auth = ["--user", user] if user else []
    argv = ["push", "--url", url, "--datasource", datasource, "--folder", folder, *auth]

    assert cli.main(argv) == 0, capsys.readouterr().err
    first = capsys.readouterr().out.splitlines()
    uids = sorted(d.uid for d in all_dashboards())
    assert sorted(line.split()[1] for line in first) == uids
    assert all(line.split()[0] in ("created", "updated", "unchanged") for line in first)

    assert cli.main(argv) == 0, capsys.readouterr().err
    second = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in second] == ["unchanged"] * len(uids), second

    credential = (Credential((user, os.environ["GRAFANA_PASSWORD"]), "GRAFANA_USER") if user
                  else Credential(os.environ["GRAFANA_TOKEN"], "GRAFANA_TOKEN"))
    g = Grafana(url, credential)
    ds_uid = g.api.datasource.get_datasource_by_name(datasource)["uid"]
    for uid in uids:
        held = g.api.dashboard.get_dashboard(uid)
        assert held["meta"]["folderTitle"] == folder
        variable = next(v for v in held["dashboard"]["templating"]["list"] if v["name"] == DATASOURCE_VARIABLE)
        assert variable["current"]["value"] == ds_uid
