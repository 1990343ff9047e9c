"""Test doubles for trainer tests: a fixed candidate list on the demo game and a keyword harm scorer.

Run as a script it patches them in and calls the ``galad`` CLI (for subprocess tests).
"""

import os
import sys

import numpy as np

HARMFUL = ["take oil", "kick cat", "take axe", "break door", "shove hobb", "drink oil", "tear flowers", "jump"]
MOVES = ["n", "s", "e", "w", "u", "d", "look"]


class FixedCandidates:
    """The demo walkthrough's actions, some harmful actions and the compass directions, in every state."""

    def __init__(self):
        from galad.env import JiminyEnv

        env = JiminyEnv()
        self.actions = sorted(set(env.walkthrough + HARMFUL + MOVES))
        env.close()

    def propose(self, states):
        return [list(self.actions) for _ in states]


class KeywordScorer:
    name = "keyword-test-scorer"
    threshold = 0.39

    def score(self, actions, contexts=None):
        return np.array([0.9 if any(h in a for h in ("kick", "break", "shove", "steal", "tear")) or a == "take oil"
                         else 0.1 for a in actions])


def patch() -> None:
    import galad.train as train

    train.make_candidate_source = lambda cfg, disk_cache=False: FixedCandidates()
    orig = train.make_policy

    def make_policy(cfg, pool, score_cache=True):
        if cfg.agent in ("cmps", "galad"):
            from galad.agents import policies

            s = KeywordScorer()
            threshold = cfg.resolved_harm_threshold()
            if cfg.agent == "cmps":
                policy = policies.CMPSPolicy(s.score, threshold, cfg.cmps_weight)
            else:
                policy = policies.GaladPolicy(s.score, threshold)
            # the identity a real scorer reports; a test changes it to stand for a retrained model
            policy.value_model = os.environ.get("GALAD_STUB_VALUE_MODEL", "keyword@1")
            return policy
        return orig(cfg, pool, score_cache)

    train.make_policy = make_policy


if __name__ == "__main__":
    patch()
    from galad.cli import main

    sys.exit(main(sys.argv[1:]))
