#!/usr/bin/env bash
# A real Kubernetes v1.20.2 cluster in network namespaces on this machine, its nodes wired by vnet,
# driven end to end and torn down (scripts/lab/k8s.ts says how). Run as root:
#
#   scripts/k8s-e2e.sh [--layout kubenet|overlay|transparent|bridge] [--nodes 2] [--dual-stack] [--keep]
#                      [--seed conf/seeds/FILE]   that conflist on every node instead of vnet install's
#   scripts/k8s-e2e.sh --cluster-only …  the cluster up and Ready, no checks, kept (scripts/lab.sh up --k8s)
#   scripts/k8s-e2e.sh --down PREFIX      remove what a --keep run (or a killed one) left
#
# Prints "ok …" / "FAIL …" per check, then PASSED or FAILED. Everything it makes is named vk<hex>…
# and goes at the end, also on failure or Ctrl-C (unless --keep); the machine's own sysctls that
# kubelet would write are compared before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ "$(id -u)" = 0 ] || { echo "k8s-e2e.sh: run as root: it creates network namespaces" >&2; exit 1; }
# What it needs (containerd, iptables, openssl, Go for the build, Node >= 20 and the npm packages),
# installed only where missing and never at the cost of another package (scripts/deps.sh).
. ./scripts/deps.sh --for k8s # and leaves Node >= 20 first on PATH
bundle() { npx --no-install esbuild scripts/lab/k8s.ts --bundle --platform=node --format=cjs --log-level=warning --outfile=dist/k8s.cjs; }

if [ "${1:-}" = --down ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --down PREFIX" >&2; exit 2; }
  [ -f dist/k8s.cjs ] || bundle
  exec node dist/k8s.cjs down --prefix "$2"
fi

keep=0
for a in "$@"; do case "$a" in --keep|--cluster-only) keep=1 ;; esac; done

# kubelet would write these machine-wide; scripts/lab/k8s.ts hides them from it (see its header).
sysctls() { cat /proc/sys/vm/overcommit_memory /proc/sys/kernel/panic /proc/sys/kernel/panic_on_oops \
  /proc/sys/vm/panic_on_oom /proc/sys/kernel/keys/root_maxkeys /proc/sys/kernel/keys/root_maxbytes | tr '\n' ' '; }
before=$(sysctls)

T0=$(date +%s)
k8s_bin=$(scripts/k8s-build.sh | tail -n 1)
[ -x "$k8s_bin/kubelet" ] || { echo "k8s-e2e.sh: scripts/k8s-build.sh gave no kubelet in $k8s_bin" >&2; exit 1; }
npm run --silent build >/dev/null
bundle
echo "built in $(( $(date +%s) - T0 ))s; kubernetes binaries in $k8s_bin"

prefix="vk$(openssl rand -hex 3)"
status=0
finish() {
  local rc=$?
  [ "$status" = 0 ] && status=$rc
  if [ "$keep" = 0 ]; then
    # scripts/lab/k8s.ts tears down itself; this catches what a killed run left, and checks nothing is.
    node dist/k8s.cjs down --prefix "$prefix" | grep -v '^ok ' || true
    if ip netns list | grep -q "^$prefix-"; then echo "FAIL namespaces left: $(ip netns list | grep "^$prefix-" | tr '\n' ' ')"; status=1; fi
    if ps -eo args | grep -v grep | grep -q "/tmp/$prefix/"; then echo "FAIL processes left"; status=1; fi
  fi
  after=$(sysctls)
  if [ "$before" = "$after" ]; then echo "ok   the machine's sysctls unchanged ($after)"
  else echo "FAIL the machine's sysctls changed: before $before, after $after"; status=1; fi
  echo "total $(( $(date +%s) - T0 ))s"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

node dist/k8s.cjs --prefix "$prefix" --bin "$k8s_bin" "$@" || status=$?
