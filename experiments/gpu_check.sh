#!/usr/bin/env bash
# The GPU path end to end: a short run of each agent (valid-action candidates) and one with the LM generator
# (--candidates lm), all with --device cuda; prints each run's env steps/s and where its time went (profile.json),
# and writes them to experiments/results/gpu_check/profiles.json.
# Usage: experiments/gpu_check.sh [GAME] [STEPS]   (default: demo, 50 steps of 8 envs; needs a CUDA device)
# The LM run needs a generator that never read GAME's walkthrough: without one, a small one is fine-tuned first
# (galad lm train --max-examples 2000, minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
game="${1:-demo}"
steps="${2:-50}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')"
python -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
runs="$(mktemp -d)"
out=experiments/results/gpu_check
mkdir -p "$out"
for agent in drrn cmps galad oracle; do
    galad train --game "$game" --agent "$agent" --steps "$steps" --device cuda --run-dir "$runs" --run-name "$agent" \
        --no-progress > /dev/null
done
if ! python -c "from galad.candidates.lm.folds import resolve_generator as r; r('$game', 'drrn')" 2>/dev/null; then
    galad lm train --max-examples 2000 --eval-states 4 > /dev/null
fi
galad train --game "$game" --agent drrn --candidates lm --steps "$steps" --device cuda --run-dir "$runs" \
    --run-name lm-drrn --no-progress > /dev/null
python - "$runs" "$out/profiles.json" <<'PY'
import json, sys
from pathlib import Path
runs, out = Path(sys.argv[1]), sys.argv[2]
profiles = {}
for run in ("drrn", "cmps", "galad", "oracle", "lm-drrn"):
    p = json.loads((runs / run / "profile.json").read_text())
    profiles[run] = p
    shares = ", ".join(f"{k} {v:.0%}" for k, v in p["phase_share"].items())
    print(f"{run:8s} {p['sps']:7.2f} env steps/s   peak memory {p['peak_memory_mb']} MB   {shares}")
Path(out).write_text(json.dumps(profiles, indent=1) + "\n")
PY
