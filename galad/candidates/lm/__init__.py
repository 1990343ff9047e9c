"""The CALM-style action generator: a causal LM proposing the top-k actions of a state.

Modules: :mod:`~galad.candidates.lm.generator` (:class:`LMGenerator` and its decoding),
:mod:`~galad.candidates.lm.data` (walkthrough pairs, held-out evaluation), :mod:`~galad.candidates.lm.train`
(``galad lm train``), :mod:`~galad.candidates.lm.distill` (``galad distill``) and
:mod:`~galad.candidates.lm.bench` (``galad lm bench``).
"""

from galad.candidates.lm.generator import (
    BASE_NAME,
    CARD_NAME,
    DIRECTIONS,
    DISTILLED_NAME,
    GGUF_FILE,
    META_COMMANDS,
    TRAINED_NAME,
    LMConfig,
    LMError,
    LMGenerator,
    action_target,
    atomic_save,
    base_model_dir,
    format_context,
    gguf_path,
    is_meta,
    lm_dir,
    load_generator,
    load_lm,
    normalise_action,
    prepare_tokenizer,
    resolve_model,
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
    "resolve_model",
    "timed",
]
