"""The CALM-style action generator: a causal LM proposing the top-k actions of a state.

Modules: :mod:`~galad.candidates.lm.generator` (:class:`LMGenerator` and its decoding),
:mod:`~galad.candidates.lm.files` (model files: where they live, loading, conversion, saving),
:mod:`~galad.candidates.lm.data` (walkthrough pairs, held-out evaluation), :mod:`~galad.candidates.lm.folds`
(which games a generator read, cross-fitting, the generator a run on a game may use),
:mod:`~galad.candidates.lm.train` (``galad lm train``), :mod:`~galad.candidates.lm.distill` (``galad lm distill``)
and :mod:`~galad.candidates.lm.bench` (``galad lm bench``).
"""

from galad.candidates.base import DIRECTIONS
from galad.candidates.lm.files import (
    BASE_NAME,
    CARD_NAME,
    DISTILLED_NAME,
    GGUF_FILE,
    TRAINED_NAME,
    LMError,
    atomic_save,
    base_model_dir,
    gguf_path,
    lm_dir,
    load_lm,
    prepare_tokenizer,
    read_card,
    resolve_model,
)
from galad.candidates.lm.generator import (
    META_COMMANDS,
    LMConfig,
    LMGenerator,
    action_target,
    format_context,
    is_meta,
    load_generator,
    normalise_action,
    timed,
)

__all__ = [
    "BASE_NAME",
    "CARD_NAME",
    "DIRECTIONS",
    "DISTILLED_NAME",
    "GGUF_FILE",
    "META_COMMANDS",
    "TRAINED_NAME",
    "LMConfig",
    "LMError",
    "LMGenerator",
    "action_target",
    "atomic_save",
    "base_model_dir",
    "format_context",
    "gguf_path",
    "is_meta",
    "lm_dir",
    "load_generator",
    "load_lm",
    "normalise_action",
    "prepare_tokenizer",
    "read_card",
    "resolve_model",
    "timed",
]
