"""The online-learning example's model without Ray: versions count examples, a weights copy
answers as sklearn does and does not move when the model learns on, the answer to a probe
flips within 12 examples of drifted feedback, and bad feedback names the field."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from examples.online_learning.app import VECTORIZER, OnlineModel, fields
from examples.online_learning.sample_feedback import CONTROL, DRIFT, PROBE, SEED

FLIPS_WITHIN = 12


def seeded() -> OnlineModel:
    m = OnlineModel()
    for text, label in SEED:
        m.learn(text, label)
    return m


def test_versions_count_examples_and_a_copy_stays_put():
    m = OnlineModel()
    untrained = m.weights()
    assert untrained.version == 0 and untrained.predict(PROBE)["probabilities"] == {"negative": 0.5, "positive": 0.5}
    assert [m.learn(t, lbl) for t, lbl in SEED[:3]] == [1, 2, 3]
    copy = m.weights()
    before = copy.predict(PROBE)
    m.learn("sick beat", "positive")
    assert copy.predict(PROBE) == before and copy.version == 3 and m.weights().version == 4
    assert m.counts == {"negative": 2, "positive": 2}


@pytest.mark.parametrize("classes", [("negative", "positive"), ("bad", "meh", "good")])
def test_a_weights_copy_answers_as_sklearn_does(classes):
    m = OnlineModel(classes)
    for i, (text, _) in enumerate(SEED):
        m.learn(text, classes[i % len(classes)])
    w = m.weights()
    for text in (PROBE, CONTROL, "unseen words entirely"):
        got = w.predict(text)
        want = dict(zip(m.clf.classes_, m.clf.predict_proba(VECTORIZER.transform([text]))[0], strict=True))
        assert np.allclose([got["probabilities"][c] for c in want], list(want.values()), atol=1e-6), (text, got, want)
        assert got["label"] == m.clf.predict(VECTORIZER.transform([text]))[0]


def test_the_probe_flips_after_drifted_feedback_and_the_control_does_not():
    m = seeded()
    assert m.weights().predict(PROBE)["label"] == "negative" and m.weights().predict(CONTROL)["label"] == "negative"
    flipped = next(i for i, (t, lbl) in enumerate(DRIFT, 1) if m.learn(t, lbl) and m.weights().predict(PROBE)["label"] == "positive")
    assert flipped <= FLIPS_WITHIN, flipped
    for text, label in DRIFT[flipped:]:
        m.learn(text, label)
    assert m.weights().predict(PROBE)["probabilities"]["positive"] > 0.7
    assert m.weights().predict(CONTROL)["label"] == "negative"


def test_the_vectorizer_is_stateless_so_replicas_agree():
    fresh = HashingVectorizer(n_features=VECTORIZER.n_features, alternate_sign=False)
    assert (fresh.transform([PROBE]) != VECTORIZER.transform([PROBE])).nnz == 0


@pytest.mark.parametrize("body, field", [
    ({"text": "ok"}, "field 'label' is missing: give one of negative, positive"),
    ({"text": "ok", "label": 1}, "field 'label': 1 is not one of negative, positive"),
    ({"label": "positive"}, "field 'text': give a non-empty string, got None"),
    ({"text": 5, "label": "positive"}, "field 'text': give a non-empty string, got 5"),
    (["ok"], "body: send a JSON object"),
])
def test_bad_feedback_names_the_field(body, field):
    with pytest.raises(ValueError, match="^" + field.replace("(", r"\(")):
        fields(body, ("negative", "positive"))


def test_a_label_the_model_does_not_know_is_refused_before_it_learns():
    m = OnlineModel()
    with pytest.raises(ValueError, match="'neutral' is not one of negative, positive"):
        m.learn("fine", "neutral")
    assert m.version == 0 and fields({"text": "fine"}) == ("fine", None)


@pytest.mark.parametrize("kwargs", [{"classes": ("only",)}, {"learning_rate": 0}])
def test_settings_that_cannot_learn_are_refused_with_the_values(kwargs):
    with pytest.raises(ValueError, match="give two or more labels and a step above 0"):
        OnlineModel(**kwargs)
