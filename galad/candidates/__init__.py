"""Candidate actions: the CandidateSource protocol and its two families.

* :mod:`galad.candidates.valid`: valid-action detection (the game's own templates and vocabulary, filled with
  the objects a state names and stepped from the saved state);
* :mod:`galad.candidates.lm`: the CALM-style generator (a causal LM proposing the top-k actions), with its
  training data, fine-tuning and distillation.
"""

from galad.candidates.base import CandidateSource, GameState

__all__ = ["CandidateSource", "GameState"]
