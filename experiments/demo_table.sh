#!/usr/bin/env bash
# The demo-game table: drrn, cmps, galad and oracle, 3 seeds each, the same budget (experiments/demo.toml), and its
# report in experiments/results/demo/. Two more sweeps on the same budget have their own commands in their files:
# GALAD with the action-only scorer (experiments/demo_action_scorer.toml) and with the game-grounded value model
# (experiments/demo_games_scorer.toml).
# Usage: experiments/demo_table.sh [SWEEPS_DIR] [WORKERS]   (run folders go there)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/sweeps}"
galad sweep experiments/demo.toml --out "$out/demo" --workers "${2:-2}"
galad report "$out/demo" --out experiments/results/demo
