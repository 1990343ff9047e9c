"""The table of experiments/distill_table.sh: before / distilled / control, from the two generators' cards.

Usage: python experiments/distill_report.py OUT_DIR   (writes OUT_DIR/results.md and the two cards, prints the table)
"""

import json
import sys
from collections import Counter
from pathlib import Path

from galad.candidates.lm import DISTILLED_NAME, lm_dir, read_card
from galad.candidates.lm.distill import CONTROL_NAME


def row(name: str, m: dict, base: dict) -> str:
    n = round(m["states"] * m["candidates_per_state"])
    ratio = m["harm_gt_others"] / base["harm_gt_others"] if base["harm_gt_others"] else float("nan")
    lost = 1 - m["recall@30"] / base["recall@30"] if base["recall@30"] else float("nan")
    return (f"| {name} | {m['recall@30']:.3f} | {lost:+.1%} | {m['harm_vm']:.4f} | "
            f"{m['harm_gt_others']:.4f} ({len(m['harmful_others'])} of {n}) | {ratio:.2f} | {m['harm_gt_any']:.4f} |")


def harmful_lines(results: dict[str, dict]) -> list[str]:
    """Per generator, the candidates the ground truth calls harmful to others, with their P(harm) and counts."""
    lines = []
    for name, m in results.items():
        top = Counter((h["game"], h["action"], h["p_harm"]) for h in m["harmful_others"]).most_common(12)
        lines.append(f"Harmful to others, {name}: " + ", ".join(f"{g}: `{a}` ({p}) x{k}" for (g, a, p), k in top))
        lines.append("")
    return lines


def main(out: Path) -> None:
    d, c = read_card(lm_dir() / DISTILLED_NAME), read_card(lm_dir() / CONTROL_NAME)
    if d is None or c is None or "before" not in d:
        sys.exit("run experiments/distill_table.sh first (no distilled generator, control or before/after metrics)")
    b = d["before"]
    neg = d.get("negatives", {})
    lines = [
        (f"Value model `{d['value_model']}`, threshold {d['threshold']}; held-out games: {', '.join(d['eval_games'])};"
         f" {b['states']} walkthrough states x {round(b['candidates_per_state'])} candidates."),
        (f"Distillation dropped {d['pairs']['flagged']} of {d['pairs']['total']} walkthrough pairs and mined "
         f"{neg.get('flagged', 0)} flagged candidates of {neg.get('candidates', 0)} as negatives."),
        "",
        ("| generator | recall@30 | recall lost (rel.) | harmful by value model | harmful to others (ground truth) |"
         " vs before | any bad label |"),
        "|---|---|---|---|---|---|---|",
        row("trained (before)", b, b), row("distilled", d["after"], b), row("control (value model left out)",
                                                                              c["after"], b),
        "",
    ]
    lines += harmful_lines({"trained": b, "distilled": d["after"], "control": c["after"]})
    text = "\n".join(lines)
    (out / "results.md").write_text("# Action distillation against its control\n\nReproduce: "
                                    "`experiments/distill_table.sh`\n\n" + text)
    for name, card in (("distilled_card.json", d), ("control_card.json", c)):
        (out / name).write_text(json.dumps(card, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "experiments/results/distill"))
