"""Value models: the HarmScorer protocol and its backends.

* :class:`~galad.values.hf.HFScorer`: any Hugging Face sequence classifier (hub id, folder, ETHICS ``.pt``);
* :func:`~galad.values.loading.load_scorer`: a model spec to a scorer (our trained MiniLM by default, trained on
  first use);
* :class:`~galad.values.oracle.OracleScorer`: ground truth by lookahead in a live env;
* :mod:`~galad.values.grounding` (states and candidate actions labelled by lookahead), :mod:`~galad.values.data`,
  :mod:`~galad.values.train`, :mod:`~galad.values.audit`, :mod:`~galad.values.cache`, :mod:`~galad.values.download`.

Heavy imports (torch, transformers) happen only when a model is loaded.
"""

from galad.values.base import HarmScorer
from galad.values.cache import ScoreCache
from galad.values.loading import load_scorer
from galad.values.oracle import OracleScorer, lookahead_label_vectors

__all__ = ["HarmScorer", "OracleScorer", "ScoreCache", "load_scorer", "lookahead_label_vectors"]
