#!/usr/bin/env bash
# The benchmark (npm run bench): vnet side by side with the reference plugins and `node -e 0`, in
# namespaces it makes and removes, interleaved, as ratios of one run; writes a markdown table to
# .tmp/bench.md (--out FILE), and with --readme into scripts/README.md too. As root, from a fresh
# clone: installs what it needs first (the reference plugins included) and builds.
#   scripts/bench.sh [--runs 30] [--quick] [--out FILE] [--readme]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root: it creates network namespaces" >&2; exit 1; }
. ./scripts/deps.sh --for bench --build # and leaves Node >= 20 first on PATH
exec env -i PATH="$PATH" node scripts/bench.mjs "$@"
