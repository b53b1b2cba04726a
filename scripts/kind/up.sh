#!/usr/bin/env bash
# A kind cluster with vnet-cni as its CNI, under docker or podman.
#
#   scripts/kind/up.sh [--name vnet] [--layout kubenet|overlay] [--reinstall]
#   scripts/kind/down.sh [--name vnet]
#
# Needs, checked before anything changes: kind, kubectl, docker or podman, and Node >= 20 with
# npm (the build is npm ci + npm run build: no apt-get, nothing installed on this machine). For
# --layout kubenet (cbr0, a bridge per node), the host's br_netfilter module: a Service reached
# from a pod on its backend's node passes the bridge, and kube-proxy's rules see it only through
# br_netfilter (kind's own CNI needs no bridge, so it may not be loaded; `modprobe br_netfilter`
# loads it, for the whole machine). --layout overlay (transparent mode's /32 routes, no bridge)
# needs nothing more. kubenet is the default.
#
# What it changes: it creates the kind cluster (the node containers and the engine's `kind`
# network) and, inside each node, /opt/cni/bin/vnet{,-ipam}, /etc/cni/net.d/10-vnet.conflist,
# routes to the other nodes' pod CIDRs, /etc/vnet/peer-routes.sh and a systemd unit that puts the
# routes back when a node container restarts. Then it waits for every node's spec.podCIDR, the
# nodes Ready and CoreDNS, and checks: pods on two nodes reach each other, a Service name resolves.
# --reinstall runs the per-node part again on an existing cluster (after its nodes' addresses
# changed, say).
set -euo pipefail
cd "$(dirname "$0")/../.."
name=vnet layout=kubenet reinstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=${2:?--name needs a cluster name}; shift 2 ;;
    --layout) layout=${2:?--layout needs kubenet or overlay}; shift 2 ;;
    --reinstall) reinstall=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "up.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$layout" in kubenet|overlay) ;; *) echo "up.sh: --layout takes kubenet or overlay (transparent and Azure's bridge need a VNet's fabric, which kind has not)" >&2; exit 2 ;; esac

# --- prerequisites, before anything changes ---
missing=()
for tool in kind kubectl node npm; do command -v "$tool" >/dev/null || missing+=("$tool"); done
engine=$(command -v docker || command -v podman || true)
[ -n "$engine" ] || missing+=("docker or podman")
[ ${#missing[@]} -eq 0 ] || { echo "up.sh: missing: ${missing[*]} (see scripts/kind/up.sh --help)" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "up.sh: the build needs Node >= 20 (node here is $(node --version))" >&2; exit 1; }
if [ "$layout" = kubenet ] && [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  echo "up.sh: --layout kubenet needs the host's br_netfilter module (Services to a pod on its own node): modprobe br_netfilter, or use --layout overlay" >&2
  exit 1
fi
[ "$(basename "$engine")" = podman ] && export KIND_EXPERIMENTAL_PROVIDER=podman
echo "up.sh: cluster $name, layout $layout, engine $engine"

# --- the build: npm alone ---
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi
npm run --silent build
dist/bin/vnet version | grep -q '^build: portable' || { echo "up.sh: dist/bin/vnet is not the portable build" >&2; exit 1; }

ctx="kind-$name"
cluster_cidr=10.244.0.0/16
[ "$reinstall" = 1 ] || kind create cluster --name "$name" --config scripts/kind/cluster.yaml
mapfile -t nodes < <(kind get nodes --name "$name")
[ ${#nodes[@]} -gt 0 ] || { echo "up.sh: kind reports no nodes for cluster $name" >&2; exit 1; }

# Each node's spec.podCIDR: set by the controller-manager, which may not have done so yet.
declare -A ip cidr
for n in "${nodes[@]}"; do
  for _ in $(seq 90); do
    cidr[$n]=$(kubectl --context "$ctx" get node "$n" -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)
    [ -n "${cidr[$n]}" ] && break
    sleep 2
  done
  [ -n "${cidr[$n]}" ] || { echo "up.sh: node $n has no spec.podCIDR after 3 minutes (is the controller-manager allocating node CIDRs?)" >&2; exit 1; }
  ip[$n]=$(kubectl --context "$ctx" get node "$n" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
done
node_net=$("$engine" network inspect kind | node scripts/kind/node-net.mjs)
for n in "${nodes[@]}"; do
  peers=()
  for m in "${nodes[@]}"; do [ "$m" = "$n" ] || peers+=("${cidr[$m]}=${ip[$m]}"); done
  "$engine" cp dist/bin/vnet "$n:/tmp/vnet"
  "$engine" cp scripts/kind/install-node.sh "$n:/tmp/install-node.sh"
  "$engine" exec "$n" sh /tmp/install-node.sh /tmp/vnet "$layout" "${cidr[$n]}" "$cluster_cidr" "$node_net" "${peers[@]}"
  "$engine" exec "$n" rm -f /tmp/vnet /tmp/install-node.sh
  echo "node $n: pod CIDR ${cidr[$n]}, address ${ip[$n]}, peers ${peers[*]}"
done
kubectl --context "$ctx" wait --for=condition=Ready nodes --all --timeout=180s
kubectl --context "$ctx" -n kube-system rollout status deployment/coredns --timeout=180s

# Smoke test: one pod on each of two workers, pinging each other; a Service name resolving.
workers=()
for n in "${nodes[@]}"; do [[ $n == *control-plane* ]] || workers+=("$n"); done
[ ${#workers[@]} -ge 2 ] || { echo "up.sh: the smoke test wants two workers (scripts/kind/cluster.yaml)" >&2; exit 1; }
kubectl --context "$ctx" delete pod smoke0 smoke1 --ignore-not-found --wait=true >/dev/null
for i in 0 1; do
  kubectl --context "$ctx" run "smoke$i" --image=busybox:1.36 --restart=Never \
    --overrides="{\"spec\":{\"nodeName\":\"${workers[$i]}\"}}" -- sleep 3600
done
kubectl --context "$ctx" wait --for=condition=Ready pod/smoke0 pod/smoke1 --timeout=120s
ip1=$(kubectl --context "$ctx" get pod smoke1 -o jsonpath='{.status.podIP}')
kubectl --context "$ctx" exec smoke0 -- ping -c 2 -W 2 "$ip1"
kubectl --context "$ctx" exec smoke0 -- nslookup kubernetes.default.svc.cluster.local
echo "kind cluster $name ($layout): pods on two nodes reach each other, and Service names resolve"
kubectl --context "$ctx" delete pod smoke0 smoke1 --wait=false
echo "scripts/kind/down.sh --name $name removes it"
