"""Candidate actions: the CandidateSource protocol, the LM generator, the valid-action detector."""

from galad.candidates.base import CandidateSource, GameState

__all__ = ["CandidateSource", "GameState"]
