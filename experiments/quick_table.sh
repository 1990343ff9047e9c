#!/usr/bin/env bash
# The quick sweep (experiments/quick.toml: 5 real games x start points 0/20 % x drrn, cmps, cmps-persistent, galad, oracle) and its
# report. Needs the Jiminy Cricket games installed (galad games download zork1 zork3 enchanter planetfall deadline).
# Usage: experiments/quick_table.sh [SWEEP_DIR] [WORKERS]   (run folders go there; table and plots to
# experiments/results/quick/)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/sweeps/quick}"
galad sweep experiments/quick.toml --out "$out" --workers "${2:-2}"
galad report "$out" --out experiments/results/quick
