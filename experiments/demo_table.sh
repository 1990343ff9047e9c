#!/usr/bin/env bash
# The demo-game table: drrn, cmps, galad and oracle, 3 seeds each, the same budget (experiments/demo.toml), and
# GALAD with the action-only scorer on the same budget (experiments/demo_action_scorer.toml), and GALAD with the
# game-grounded value model (experiments/demo_games_scorer.toml; trains commonsense_models/minilm_games.toml first).
# Usage: experiments/demo_table.sh [SWEEPS_DIR]   (run folders go there; tables and plots to experiments/results/)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/sweeps}"
galad sweep experiments/demo.toml --out "$out/demo"
galad report "$out/demo" --out experiments/results/demo
galad sweep experiments/demo_action_scorer.toml --out "$out/demo_action_scorer"
galad report "$out/demo_action_scorer" --out experiments/results/demo_action_scorer
galad value score --model galad:minilm-games "wait" > /dev/null   # trains it once if it is not cached
galad sweep experiments/demo_games_scorer.toml --out "$out/demo_games_scorer"
galad report "$out/demo_games_scorer" --out experiments/results/demo_games_scorer
