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
    threshold = 0.39

    def __init__(self):
        # the identity a real scorer reports; a test changes it to stand for a retrained model
        self.name = os.environ.get("GALAD_STUB_VALUE_MODEL", "keyword@1")

    def score(self, actions, contexts=None):
        return np.array([0.9 if any(h in a for h in ("kick", "break", "shove", "steal", "tear")) or a == "take oil"
                         else 0.1 for a in actions])


def patch() -> None:
    """The trainer's two outside pieces replaced: the candidate source and the value model."""
    import galad.train as train

    train.make_candidate_source = lambda cfg, disk_cache=False: FixedCandidates()
    train.prepare_value_model = lambda cfg: None
    train.load_value_model = lambda cfg, score_cache=True: KeywordScorer()


if __name__ == "__main__":
    patch()
    from galad.cli import main

    sys.exit(main(sys.argv[1:]))
