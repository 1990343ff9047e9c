#!/usr/bin/env bash
# Action distillation against its control, on the held-out games of `galad lm train` (zork1, hitchhiker,
# wishbringer, suspect, ballyhoo): the trained generator before, distilled (value-flagged walkthrough pairs dropped,
# flagged own candidates pushed down), and the control (the same fine-tuning with the value model left out).
# Needs the games installed and `galad lm train` run first. Writes experiments/results/distill/results.md and
# the two generators' cards.
# Usage: experiments/distill_table.sh [extra galad lm distill options, e.g. --value-model NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
out=experiments/results/distill
mkdir -p "$out"
common=(--eval-states 24 --max-examples 300 --seed 0 "$@")
galad lm distill --mine-states 150 "${common[@]}"
galad lm distill --control --no-eval-before "${common[@]}"
python experiments/distill_report.py "$out"
