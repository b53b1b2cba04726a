#!/usr/bin/env bash
# A kind cluster with vnet-cni as its CNI: builds the executable, creates the cluster from
# cluster.yaml (no default CNI), copies the executable and install-node.sh into every node, runs
# the node-side installer there with that node's spec.podCIDR and routes to the other nodes' pod
# CIDRs, waits for the nodes to be Ready, and runs a smoke test: pods on two nodes reach each
# other, and a Service name resolves (CoreDNS itself runs on vnet's network).
#
#   scripts/kind/up.sh [--name vnet] [--keep]      (needs kind, kubectl, and docker or podman)
#   scripts/kind/down.sh [--name vnet]
set -euo pipefail
cd "$(dirname "$0")/../.."
name=vnet keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "up.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in kind kubectl; do command -v "$tool" >/dev/null || { echo "up.sh: $tool is not installed" >&2; exit 1; }; done
engine=$(command -v docker || command -v podman || true)
[ -n "$engine" ] || { echo "up.sh: neither docker nor podman is installed" >&2; exit 1; }
[ "$(basename "$engine")" = podman ] && export KIND_EXPERIMENTAL_PROVIDER=podman

./scripts/deps.sh --build
kind create cluster --name "$name" --config scripts/kind/cluster.yaml
ctx="kind-$name"
cluster_cidr=10.244.0.0/16

mapfile -t nodes < <(kind get nodes --name "$name")
declare -A ip cidr
for n in "${nodes[@]}"; do
  ip[$n]=$(kubectl --context "$ctx" get node "$n" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
  cidr[$n]=$(kubectl --context "$ctx" get node "$n" -o jsonpath='{.spec.podCIDR}')
done
node_net=$("$engine" network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' | tr ' ' '\n' | grep -v : | head -n1)
for n in "${nodes[@]}"; do
  peers=()
  for m in "${nodes[@]}"; do [ "$m" = "$n" ] || peers+=("${cidr[$m]}=${ip[$m]}"); done
  "$engine" cp dist/bin/vnet "$n:/tmp/vnet"
  "$engine" cp scripts/kind/install-node.sh "$n:/tmp/install-node.sh"
  "$engine" exec "$n" sh /tmp/install-node.sh /tmp/vnet "${cidr[$n]}" "$cluster_cidr" "$node_net" "${peers[@]}"
  "$engine" exec "$n" rm -f /tmp/vnet /tmp/install-node.sh
  echo "node $n: pod CIDR ${cidr[$n]}, address ${ip[$n]}, peers ${peers[*]}"
done
kubectl --context "$ctx" wait --for=condition=Ready nodes --all --timeout=180s

# Smoke test: one pod on each of two workers, pinging each other; a Service name resolving.
workers=()
for n in "${nodes[@]}"; do [[ $n == *control-plane* ]] || workers+=("$n"); done
for i in 0 1; do
  kubectl --context "$ctx" run "smoke$i" --image=busybox:1.36 --restart=Never \
    --overrides="{\"spec\":{\"nodeName\":\"${workers[$i]}\"}}" -- sleep 3600
done
kubectl --context "$ctx" wait --for=condition=Ready pod/smoke0 pod/smoke1 --timeout=120s
ip1=$(kubectl --context "$ctx" get pod smoke1 -o jsonpath='{.status.podIP}')
kubectl --context "$ctx" exec smoke0 -- ping -c 2 -W 2 "$ip1"
kubectl --context "$ctx" exec smoke0 -- nslookup kubernetes.default.svc.cluster.local
echo "kind cluster $name: pods on two nodes reach each other, and Service names resolve"
kubectl --context "$ctx" delete pod smoke0 smoke1 --wait=false
[ "$keep" = 1 ] || echo "scripts/kind/down.sh --name $name removes it"
