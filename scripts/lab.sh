#!/usr/bin/env bash
# The lab: a cluster of network namespaces on this machine (a VNet, nodes, pods, the outside
# world), the built plugin run in each node exactly as a runtime runs it. Run as root:
#
#   scripts/lab.sh up transparent|bridge|kubenet|overlay [--nodes N] [--pods M] [--dual-stack]
#   scripts/lab.sh status | matrix | exec POD CMD… | down
#   scripts/lab.sh up --k8s LAYOUT [--nodes N] [--dual-stack]   a real Kubernetes cluster (scripts/k8s-e2e.sh)
#   scripts/lab.sh kubectl ARGS…                  kubectl against it, from its control plane's namespace
#   scripts/lab.sh soak LAYOUT [--cycles N] [--parallel P] [--dual-stack]
#   scripts/lab.sh demo [--dual-stack]
#   scripts/lab.sh readme      every command output in README.md and scripts/README.md, and the pictures
#                              of the layouts (scripts/lab/pictures/), regenerated from labs
#
# up, soak, demo and readme install what is missing and build first (scripts/deps.sh --for lab --build); the lab's
# code is scripts/lab/*.ts, the same the end-to-end tests (test/lab.test.ts) run. Nothing touches the
# machine's own namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  ''|-h|--help|help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit ;;
esac
[ "$(id -u)" = 0 ] || { echo "lab.sh: run as root: it creates network namespaces" >&2; exit 1; }

# The Kubernetes cluster: lab/k8s.ts keeps "PREFIX K8S_BIN KUBECONFIG" in this file while it is up.
k8s=/run/vnet-lab-k8s
if [ "$1" = up ] && [ "${2:-}" = --k8s ]; then
  [ ! -e "$k8s" ] || { echo "lab.sh: a Kubernetes cluster is up already: scripts/lab.sh down first" >&2; exit 1; }
  [ -n "${3:-}" ] || { echo "usage: scripts/lab.sh up --k8s kubenet|overlay|transparent|bridge [--nodes N] [--dual-stack]" >&2; exit 2; }
  exec ./scripts/k8s-e2e.sh --cluster-only --layout "$3" "${@:4}"
fi
if [ "$1" = kubectl ]; then
  [ -f "$k8s" ] || { echo "lab.sh: no Kubernetes cluster is up: scripts/lab.sh up --k8s LAYOUT first" >&2; exit 1; }
  read -r prefix bin kubeconfig < "$k8s"
  exec nsenter --net="/var/run/netns/$prefix-cp" -- "$bin/kubectl" --kubeconfig "$kubeconfig" "${@:2}"
fi
if [ "$1" = down ] && [ -f "$k8s" ]; then
  read -r prefix _ < "$k8s"
  ./scripts/k8s-e2e.sh --down "$prefix"
  [ -d /run/vnet-lab ] || exit 0
fi
case "$1" in
  up|soak|demo|readme)
    . ./scripts/deps.sh --for lab --build # and leaves Node >= 20 first on PATH
    npx --no-install esbuild scripts/lab/cli.ts --bundle --platform=node --format=cjs --log-level=warning --outfile=dist/lab.cjs ;;
  *)
    [ -x .tmp/node20/bin/node ] && PATH="$PWD/.tmp/node20/bin:$PATH"
    [ -f dist/lab.cjs ] || { echo "lab.sh: no lab has been built here: scripts/lab.sh up LAYOUT first" >&2; exit 1; } ;;
esac
exec node dist/lab.cjs "$@"
