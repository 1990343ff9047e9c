"""The DRRN tokenizer: a SentencePiece model the project trains on a game's own text (no hub download).

The corpus is the game's walkthrough replayed through :class:`JiminyEnv` (observations, ``look`` and
``inventory`` at every step, the actions) plus its annotation descriptions; the model is cached under
``GALAD_HOME/tokenizers/`` keyed by game and corpus hash, written atomically.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

from galad import paths
from galad.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

PAD_ID = 0


def game_corpus(game: str) -> list[str]:
    """Text lines from one game: walkthrough observations, look, inventory and actions."""
    from galad.env.jiminy import JiminyEnv

    env = JiminyEnv(game)
    lines: list[str] = []
    try:
        obs, _ = env.reset()
        lines.append(obs)
        for action in env.walkthrough:
            state = env.get_state()
            for probe in ("look", "inventory"):
                lines.append(env.step(probe)[0])
                env.set_state(state)
            obs, _, term, trunc, _ = env.step(action)
            lines += [action, obs]
            if term or trunc:
                break
        lines += [a.description for a in env.annotations.rows.values() if a.description]
    finally:
        env.close()
    return [ln.strip() for text in lines for ln in text.split("\n") if ln.strip()]


class Tokenizer:
    """SentencePiece encoder with a padding id of 0."""

    def __init__(self, model_file: str | Path):
        import sentencepiece as spm

        self.model_file = str(model_file)
        self.sp = spm.SentencePieceProcessor(model_file=self.model_file)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text or " ")

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode([t or " " for t in texts])

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(ids)


def load_or_train(game: str, vocab_size: int = 8000) -> Tokenizer:
    """The game's cached tokenizer, trained on first use (a few seconds)."""
    import sentencepiece as spm

    corpus = game_corpus(game)
    text = "\n".join(corpus)
    digest = hashlib.sha256(f"{vocab_size}\n{text}".encode()).hexdigest()[:16]
    out_dir = paths.galad_home() / "tokenizers"
    model = out_dir / f"{game}-{digest}.model"
    if model.is_file():
        return Tokenizer(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("training the %s tokenizer on %d lines", game, len(corpus))
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=buf, vocab_size=vocab_size, hard_vocab_limit=False,
        model_type="unigram", character_coverage=1.0, pad_id=PAD_ID, unk_id=1, bos_id=-1, eos_id=-1,
        num_threads=1, minloglevel=2,
    )
    write_bytes_atomic(model, buf.getvalue())
    return Tokenizer(model)
