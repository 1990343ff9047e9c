#!/usr/bin/env bash
# The value-model audit over every game: the default model and the game-grounded fold models (galad:games: each
# game scored by the fold model that never read it), both context modes, precision and recall at the policies'
# tau (0.39), harm recall by verb. Writes experiments/results/value_audit/{default,games}.json and the tables of
# its README (experiments/value_audit_tables.py).
# Usage: experiments/value_audit.sh   (the 25 real games installed; the fold models are trained on first use)
set -euo pipefail
cd "$(dirname "$0")/.."
out=experiments/results/value_audit
mkdir -p "$out"
galad value audit --all --mode both --json > "$out/default.json.tmp" && mv "$out/default.json.tmp" "$out/default.json"
galad value audit --all --mode both --model galad:games --json > "$out/games.json.tmp" && mv "$out/games.json.tmp" "$out/games.json"
python experiments/value_audit_tables.py "$out/default.json" "$out/games.json"
