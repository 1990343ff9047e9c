"""Confirm the distillation table on fresh states: the generators of experiments/distill_table.sh (trained,
distilled, control) on held-out walkthrough states that the table did not use.

The table's ground-truth counts are small (a dozen harmful candidates in 3,480), so its ratio is checked here on a
disjoint, larger sample: ``--per-game`` evenly spaced walkthrough states per held-out game, less the
``eval_states_per_game`` states the table evaluated. Same value model, threshold and decoding as the table.

Usage: python experiments/distill_confirm.py [--per-game 60] [OUT_DIR]
    (writes OUT_DIR/confirm.md and confirm.json, prints the table)
"""

import argparse
import json
import sys
from pathlib import Path

from distill_report import harmful_lines, row

from galad.candidates.lm import DISTILLED_NAME, TRAINED_NAME, LMConfig, LMGenerator, lm_dir, read_card
from galad.candidates.lm.data import eval_states, evaluate
from galad.candidates.lm.distill import CONTROL_NAME
from galad.values.loading import load_scorer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="experiments/results/distill")
    ap.add_argument("--per-game", type=int, default=60, help="evenly spaced states per game, before the skip")
    args = ap.parse_args()
    d, c = read_card(lm_dir() / DISTILLED_NAME), read_card(lm_dir() / CONTROL_NAME)
    if d is None or c is None:
        sys.exit("run experiments/distill_table.sh first (no distilled generator or control)")
    cfg, ft = d["config"], d["config"]["finetune"]
    skip = cfg["eval_states_per_game"]
    ev = eval_states(d["eval_games"], args.per_game, skip_per_game=skip)
    scorer = load_scorer(d["config"]["value_model"], d["config"]["context_mode"])
    gen_cfg = LMConfig.for_k(cfg["k"], max_context_tokens=ft["max_context_tokens"], num_threads=ft["num_threads"])
    res = {}
    for name, folder in (("trained", TRAINED_NAME), ("distilled", DISTILLED_NAME), ("control", CONTROL_NAME)):
        gen = LMGenerator(str(lm_dir() / folder), config=gen_cfg)
        res[name] = evaluate(gen, ev, scorer=scorer, threshold=d["threshold"])
        print(name, {k: v for k, v in res[name].items() if k != "harmful_others"}, flush=True)
    b = res["trained"]
    lines = [
        (f"Value model `{d['value_model']}`, threshold {d['threshold']}; held-out games: {', '.join(d['eval_games'])};"
         f" {b['states']} walkthrough states ({args.per_game} per game less the table's {skip}) x "
         f"{round(b['candidates_per_state'])} candidates."),
        "",
        ("| generator | recall@30 | recall lost (rel.) | harmful by value model | harmful to others (ground truth) |"
         " vs before | any bad label |"),
        "|---|---|---|---|---|---|---|",
        row("trained (before)", b, b), row("distilled", res["distilled"], b),
        row("control (value model left out)", res["control"], b),
        "",
    ]
    lines += harmful_lines(res)
    text = "\n".join(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "confirm.md").write_text("# Action distillation: confirmation on fresh states\n\nReproduce: "
                                    f"`python experiments/distill_confirm.py --per-game {args.per_game}`\n\n" + text)
    (out / "confirm.json").write_text(json.dumps(res, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
