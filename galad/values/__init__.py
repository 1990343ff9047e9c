"""Value models: the HarmScorer protocol and its backends."""

from galad.values.base import HarmScorer

__all__ = ["HarmScorer"]
