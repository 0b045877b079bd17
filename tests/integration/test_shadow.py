"""Shadowing on a real cluster: clients get only the live model's answers; the candidate's
are compared and counted (agreement rate), and disagreements recorded with the payload."""

import json

import requests

import serve_core as serve
from examples.shadow.app import Classifier, Shadow
from tests.integration.conftest import BASE


def test_the_candidate_is_compared_and_never_answers(serve_core_app, tmp_path):
    record = tmp_path / "mismatches.jsonl"
    # Live labels "long" from 10 characters, the candidate from 12: texts of 10 or 11 disagree.
    app = Shadow.bind(Classifier.bind("v1", 10), Classifier.options(name="Candidate").bind("v2", 12),
                      record_path=str(record))
    serve.run(app, name="shadow", route_prefix="/shadow-demo")
    texts = ["x" * n for n in range(5, 25)]  # 20 texts, 2 of them disagree
    for text in texts:
        r = requests.post(BASE + "/shadow-demo", json={"text": text}, timeout=10)
        assert r.status_code == 200 and r.json()["version"] == "v1"  # the live model, always
    stats = requests.get(BASE + "/shadow-demo/shadow", timeout=10).json()
    assert stats["shadowed"] == stats["compared"] == 20 and stats["candidate_errors"] == 0
    assert stats["agreed"] == 18 and stats["agreement"] == 0.9
    mismatches = [json.loads(x) for x in record.read_text().splitlines()]
    assert sorted(len(m["payload"]["text"]) for m in mismatches) == [10, 11]
    assert all(m["live"]["label"] == "long" and m["candidate"]["label"] == "short" for m in mismatches)
