#!/usr/bin/env bash
# Valid-action detection against Jericho's get_valid_actions on the same walkthrough states of every installed
# Jiminy Cricket game (6 evenly spaced states and 2 states whose walkthrough action fires an annotation marker per
# game), at four budgets (0: every candidate). Writes experiments/results/candidates/bench.json.
# Usage: experiments/candidates_table.sh    (about 10 minutes on 2 cores; needs the games installed)
set -euo pipefail
cd "$(dirname "$0")/.."
galad candidates bench --states 6 --marker-states 2 --budget 0 150 250 400 \
    --json experiments/results/candidates/bench.json
