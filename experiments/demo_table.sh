#!/usr/bin/env bash
# The demo-game table: drrn, cmps, galad and oracle, 3 seeds each, the same budget (experiments/demo.toml), and its
# report in experiments/results/demo/; then GALAD with the game-grounded fold model that never read the demo
# (experiments/demo_games_scorer.toml, value model galad:games), reported in experiments/results/demo_games_scorer/. GALAD with the action-only scorer (experiments/demo_action_scorer.toml)
# has its own command in its file.
# Usage: experiments/demo_table.sh [SWEEPS_DIR] [WORKERS]   (run folders go there)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/sweeps}"
galad sweep experiments/demo.toml --out "$out/demo" --workers "${2:-2}"
galad report "$out/demo" --out experiments/results/demo
galad value train --recipe minilm-games --game demo   # the fold model that holds the demo out (once)
galad sweep experiments/demo_games_scorer.toml --out "$out/demo_games_scorer" --workers "${2:-2}"
galad report "$out/demo_games_scorer" --out experiments/results/demo_games_scorer
