#!/usr/bin/env bash
# Build the demo story file:  bash build.sh OUT_PATH
# INFORM6 overrides the compiler, INFORM6_LIB the library directory.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: bash build.sh OUT_PATH" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"
INFORM6="${INFORM6:-inform6}"
INFORM6_LIB="${INFORM6_LIB:-/usr/share/inform6/library}"
# -v5: Z-machine version 5.  Serial "261126" in the source keeps rebuilds
# byte-identical (no compile date in the header).  -~S: no strict mode, i.e.
# no run-time checks around every property and array access (the game prints
# the same text either way; agents step it hundreds of times per state).
"$INFORM6" -v5 -~S "+include_path=${INFORM6_LIB}" "$here/demo.inf" "$out"
