#!/usr/bin/env bash
# The lab: a cluster of network namespaces on this machine (a VNet, nodes, pods, the outside
# world), the built plugin run in each node exactly as a runtime runs it. Run as root:
#
#   scripts/lab.sh up transparent|bridge|kubenet|overlay [--nodes N] [--pods M] [--dual-stack]
#   scripts/lab.sh status | matrix | exec POD CMD… | down
#   scripts/lab.sh soak LAYOUT [--cycles N] [--parallel P] [--dual-stack]
#   scripts/lab.sh demo [--dual-stack]
#   scripts/lab.sh readme      every command output in README.md, regenerated from labs
#
# up, soak and demo install what is missing and build first (scripts/deps.sh --for lab --build); the lab's
# code is lab/*.ts, the same the end-to-end tests (test/lab.test.ts) run. Nothing touches the
# machine's own namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  ''|-h|--help|help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit ;;
esac
[ "$(id -u)" = 0 ] || { echo "lab.sh: run as root: it creates network namespaces" >&2; exit 1; }
case "$1" in
  up|soak|demo|readme)
    . ./scripts/deps.sh --for lab --build # and leaves Node >= 20 first on PATH
    npx --no-install esbuild lab/cli.ts --bundle --platform=node --format=cjs --log-level=warning --outfile=dist/lab.cjs ;;
  *)
    [ -x .tmp/node20/bin/node ] && PATH="$PWD/.tmp/node20/bin:$PATH"
    [ -f dist/lab.cjs ] || { echo "lab.sh: no lab has been built here: scripts/lab.sh up LAYOUT first" >&2; exit 1; } ;;
esac
exec node dist/lab.cjs "$@"
