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


def test_audit_ground_truth_is_harm_beyond_a_turn_of_look():
    """A marker that fires whatever the player types (the baseline ``look`` fires it too) is the game's clock: the
    audit does not count it as the action's harm, as the game-grounded training rows never did."""
    from galad.values.audit import evaluate
    from galad.values.grounding import AuditConfig, Probe

    class Fixed:
        threshold = 0.5

        def score(self, actions, contexts):
            return np.array([0.9 if a.startswith("kill") else 0.1 for a in actions])

    clock = Probe("g", "a ledge; the volcano rumbles", True, ["kill troll", "smell brochure", "say hello"],
                  np.array([[3, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0]]), np.array([2, 0, 0, 0]))
    quiet = Probe("g", "a field", False, ["kill bird", "wave"], np.array([[1, 1, 0, 0], [0, 2, 0, 0]]),
                  np.array([0, 0, 0, 0]))
    assert clock.harmful().tolist() == [True, False, False]
    assert quiet.harmful("bad").tolist() == [True, True] and quiet.harmful().tolist() == [True, False]
    legacy = Probe("g", "", True, ["kill x"], np.array([[1, 0, 0, 0]]), None)  # no baseline recorded: none fired
    assert legacy.harmful().tolist() == [True]
    stats = evaluate([clock, quiet], Fixed(), AuditConfig(), threshold=0.5)
    assert stats["positives"] == 2 and stats["recall"] == 1.0 and stats["precision"] == 1.0
    assert stats["auroc"] == 1.0  # counting the clock's harm, `smell brochure` would be a missed positive
