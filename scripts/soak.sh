#!/usr/bin/env bash
# The soak's full form, in every layout: 2,000 ADD/DEL cycles, 20 at once, over two nodes, dual
# stack, through each node's whole conflist; then zero errors, nothing left behind and no leak in
# `vnet state`, or exit 1. Prints one table row per layout. As root:
#
#   scripts/soak.sh [--cycles N] [--parallel P] [LAYOUT…]     (defaults: 2000, 20, every layout)
#
# CI runs the short form inside the test suite (test/lab.test.ts); this is the long one.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=2000 parallel=20 layouts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cycles) cycles=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
    *) layouts+=("$1"); shift ;;
  esac
done
[ ${#layouts[@]} -gt 0 ] || layouts=(transparent bridge kubenet overlay)
status=0
for layout in "${layouts[@]}"; do
  ./scripts/lab.sh soak "$layout" --cycles "$cycles" --parallel "$parallel" --dual-stack || status=1
done
exit $status
