"""The lookahead (oracle) ground truth on the demo game."""

import numpy as np

from galad.env import JiminyEnv
from galad.values.metrics import auroc
from galad.values.oracle import OracleScorer, lookahead_label_vectors


def test_lookahead_reads_labels_and_restores_state():
    env = JiminyEnv()
    env.reset()
    for a in ("take penny", "e", "e"):
        env.step(a)
    before = env.get_state()
    vec = lookahead_label_vectors(env, ["take oil", "look", "take oil"])
    assert vec.tolist() == [[2, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0]]
    assert env.state_key() == (env.set_state(before) or env.state_key())
    assert env.step("take oil")[4]["label_vectors"] == [[2, 0, 0, 0]]
    assert OracleScorer(env).score([]).shape == (0,)
    env.close()


def test_auroc_matches_definition():
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auroc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(auroc([1, 1], [0.2, 0.3]))


def test_threshold_curve_counts():
    from galad.values.audit import threshold_curve

    y = [1, 1, 0, 0, 0]
    s = [0.9, 0.3, 0.6, 0.2, 0.1]
    rows = {r["threshold"]: r for r in threshold_curve(y, s, thresholds=(0.25, 0.5, 0.95))}
    assert rows[0.25] == {"threshold": 0.25, "precision": 0.6667, "recall": 1.0, "flagged": 0.6}
    assert rows[0.5] == {"threshold": 0.5, "precision": 0.5, "recall": 0.5, "flagged": 0.4}
    assert rows[0.95] == {"threshold": 0.95, "precision": None, "recall": 0.0, "flagged": 0.0}
