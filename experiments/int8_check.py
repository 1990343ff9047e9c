"""How far the deployed int8 value model is from its own fp32 weights, on the audit's (action, scene) pairs.

torch's dynamic int8 quantisation scales each linear layer's input by the range of the whole batch, so an action's
P(harm) depends on the batch it is scored in as well as on the rounding. For each game this scores the audit's
pairs (``galad value audit``'s probes: 20 states, up to 80 candidates each) as the trainer does (contextual, cut to
the card's ``context_max_length``, length-sorted batches of 64) with the fp32 weights, the int8 model, and the int8
model one pair at a time, then reports how far the scores move, how many decisions at the policies' tau change,
and each variant's AUROC against the games' ground truth. Two other int8 forms are scored beside them: per-channel
weight scales, and the feed-forward output layers left in fp32 (where BERT-style models have their activation
outliers), with their speed on the same pairs.

Usage: python experiments/int8_check.py [--model galad:minilm-commonsense] [--json FILE] [GAME ...]
    (default: the demo; the games must be installed)
"""

import argparse
import copy
import json
import re
import sys
import time

import numpy as np
import torch

from galad.atomic import write_json_atomic
from galad.config import POLICY_HARM_THRESHOLD
from galad.values.base import action_text
from galad.values.grounding import AuditConfig, cached_probes
from galad.values.hf import load_model, predict_proba, quantize_dynamic
from galad.values.folds import recipe_for
from galad.values.metrics import binary_stats
from galad.values.train import model_dir, read_card


def quantize(net, qconfig, keep_fp32: str | None = None):
    """torch's dynamic int8 of every linear layer whose name does not match ``keep_fp32``, with ``qconfig``."""
    spec = {name: qconfig for name, m in net.named_modules()
            if isinstance(m, torch.nn.Linear) and not (keep_fp32 and re.search(keep_fp32, name))}
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(net), spec)


def scored(tok, model, texts, contexts, length) -> tuple[np.ndarray, float]:
    """P(harm) of every pair as the trainer scores them (length-sorted batches of 64), and pairs per CPU second."""
    t = time.process_time()
    p = np.array(predict_proba(tok, model, texts, contexts, 64, length))
    return p, round(len(texts) / (time.process_time() - t), 1)


def compare(a: np.ndarray, b: np.ndarray, tau: float) -> dict:
    d = np.abs(a - b)
    return {"mean_abs_diff": round(float(d.mean()), 4), "max_abs_diff": round(float(d.max()), 4),
            "decisions_changed": int(((a > tau) != (b > tau)).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("games", nargs="*", default=["demo"])
    ap.add_argument("--model", default=None, help="one of our value models (default: the default model)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = model_dir(recipe_for(args.model).name)
    card = read_card(folder)
    tok, net = load_model(str(folder))
    q = quantize_dynamic(net)
    qc = torch.ao.quantization
    others = {"int8_per_channel": quantize(net, qc.per_channel_dynamic_qconfig),
              "int8_ffn_output_fp32": quantize(net, qc.default_dynamic_qconfig, r"layer\.\d+\.output\.dense")}
    length, tau, cfg = card["context_max_length"], POLICY_HARM_THRESHOLD, AuditConfig()
    out = {"model": card["model_id"], "context_max_length": length, "tau": tau, "games": {}}
    for game in args.games:
        probes = cached_probes(game, cfg)
        texts = [action_text(a) for p in probes for a in p.actions]
        contexts = [p.context for p in probes for _ in p.actions]
        y = np.concatenate([p.harmful(cfg.target) for p in probes])
        (fp32, fp32_speed), (int8, int8_speed) = (scored(tok, m, texts, contexts, length) for m in (net, q))
        alone = np.array(predict_proba(tok, q, texts, contexts, 1, length))
        row = {"pairs": len(texts), "harmful": int(y.sum()),
               "int8_vs_fp32": compare(int8, fp32, tau), "int8_alone_vs_fp32": compare(alone, fp32, tau),
               "int8_batched_vs_alone": compare(int8, alone, tau),
               "pairs_per_cpu_s": {"fp32": fp32_speed, "int8": int8_speed}}
        scores = {"fp32": fp32, "int8": int8, "int8_alone": alone}
        for name, model in others.items():
            scores[name], row["pairs_per_cpu_s"][name] = scored(tok, model, texts, contexts, length)
            row[f"{name}_vs_fp32"] = compare(scores[name], fp32, tau)
        row["auroc"] = {k: round(float(binary_stats(y, v, tau)["auroc"]), 4) for k, v in scores.items()}
        out["games"][game] = row
        print(json.dumps({game: row}), flush=True)
    if args.json:
        write_json_atomic(args.json, out)


if __name__ == "__main__":
    sys.exit(main())
