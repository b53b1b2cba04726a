#!/usr/bin/env bash
# The demo: transparent mode for real, in namespaces it makes and removes. A namespace plays an
# AKS node (eth0 10.224.0.4/16 towards a namespace playing the VNet gateway 10.224.0.1), two more
# play pods; the plugin runs inside the node namespace exactly as a container runtime runs it.
# --dual-stack: the node and the VNet get IPv6 too (fd00:224::4, gateway fd00:224::1) and the pods
# an address of each family, from conf/10-azure-dual-stack.conflist.
set -euo pipefail
dual=; [ "${1:-}" = --dual-stack ] && dual=1
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root: it creates network namespaces" >&2; exit 1; }
. ./scripts/deps.sh --build # and leaves Node >= 20 first on PATH for node below

p="vdemo$$"
node="$p-node" gw="$p-vnet" pods=("$p-pod1" "$p-pod2")
work=$(mktemp -d "/tmp/$p.XXXX")
cleanup() {
  for ns in "${pods[@]}" "$node" "$gw"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

bin=$(pwd)/dist/bin
# JSON is handled with node, which the build needs anyway.
js() { node -e "$1" -- "${@:2}"; }
# The example conflist's vnet plugin, as a runtime hands it over (name and cniVersion filled
# in), with its log and IPAM state in the demo's own directory.
conf=$(js 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const p = { ...c.plugins[0], name: c.name, cniVersion: c.cniVersion, logFile: process.argv[2] + "/vnet.log" };
  p.ipam = { ...p.ipam, dataDir: process.argv[2] + "/ipam" };
  console.log(JSON.stringify(p));' "conf/10-azure-$([ -n "$dual" ] && echo dual-stack || echo transparent).conflist" "$work")
network=$(js 'console.log(JSON.parse(process.argv[1]).name)' "$conf")
withprev() { js 'const c = JSON.parse(process.argv[1]); c.prevResult = JSON.parse(process.argv[2]); console.log(JSON.stringify(c));' "$conf" "$1"; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
cni() { # cni COMMAND POD [STDIN]
  env CNI_COMMAND="$1" CNI_CONTAINERID="demo-$2" CNI_NETNS="/var/run/netns/$2" CNI_IFNAME=eth0 \
      CNI_PATH="$bin:/usr/lib/cni" VNET_LOG_FILE="$work/vnet.log" \
      nsenter --net="/var/run/netns/$node" "$bin/vnet" <<<"${3:-$conf}"
}

say "A node and its VNet"
for ns in "$node" "$gw" "${pods[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$node" link add eth0 type veth peer name vnet0 netns "$gw"
if [ -n "$dual" ]; then
  # These links are brand new: skip their duplicate address detection, long over on a real node.
  ip netns exec "$node" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
  ip netns exec "$gw" sysctl -qw net.ipv6.conf.vnet0.accept_dad=0
  ip -n "$node" addr add fd00:224::4/64 dev eth0 && ip -n "$gw" addr add fd00:224::1/64 dev vnet0
fi
ip -n "$node" addr add 10.224.0.4/16 dev eth0 && ip -n "$node" link set eth0 up
ip -n "$gw" addr add 10.224.0.1/16 dev vnet0 && ip -n "$gw" link set vnet0 up
ip -n "$node" route add default via 10.224.0.1
[ -z "$dual" ] || ip -n "$node" route add default via fd00:224::1 dev eth0
run ip -n "$node" -br addr

say "What ADD will do (vnet explain runs nothing)"
printf '%s' "$conf" > "$work/net.conf"
run "$bin/vnet" explain --conf "$work/net.conf" --container-id "demo-${pods[0]}" --netns "/var/run/netns/${pods[0]}"

declare -A ips ips6 results
for pod in "${pods[@]}"; do
  say "ADD $pod (CNI_COMMAND=ADD, as kubelet's runtime calls it)"
  result=$(cni ADD "$pod")
  js 'console.log(JSON.stringify(JSON.parse(process.argv[1]), null, 2))' "$result"
  results[$pod]=$result
  ips[$pod]=$(js 'console.log(JSON.parse(process.argv[1]).ips[0].address.split("/")[0])' "$result")
  # The VNet learns which node holds the pod (Azure programs this in its fabric).
  ip -n "$gw" route add "${ips[$pod]}/32" via 10.224.0.4
  if [ -n "$dual" ]; then
    ips6[$pod]=$(js 'console.log(JSON.parse(process.argv[1]).ips[1].address.split("/")[0])' "$result")
    ip -n "$gw" route add "${ips6[$pod]}/128" via fd00:224::4
  fi
done

say "Inside ${pods[0]}: the address keeps the subnet's /16 but every packet goes to 169.254.1.1"
run ip -n "${pods[0]}" addr show eth0
run ip -n "${pods[0]}" route
run ip -n "${pods[0]}" neigh
[ -z "$dual" ] || run ip -n "${pods[0]}" -6 route
say "On the node: a /32 route per pod through its azv veth (MAC aa:aa:aa:aa:aa:aa, proxy ARP on)"
run ip -n "$node" route
[ -z "$dual" ] || run ip -n "$node" -6 route
[ -z "$dual" ] || run ip -n "$node" -6 neigh show nud permanent
run ip -n "$node" -br link
run nsenter --net="/var/run/netns/$node" "$bin/vnet" state --data-dir "$work/ipam" --network "$network"
say "The plugin's log of those ADDs ($work/vnet.log)"
cat "$work/vnet.log"

say "Traffic"
run ip netns exec "${pods[0]}" ping -c 2 -W 2 "${ips[${pods[1]}]}"
run ip netns exec "${pods[1]}" ping -c 2 -W 2 10.224.0.1
[ -z "$dual" ] || run ip netns exec "${pods[0]}" ping -c 2 -W 2 "${ips6[${pods[1]}]}"
[ -z "$dual" ] || run ip netns exec "${pods[1]}" ping -c 2 -W 2 fd00:224::1

say "CHECK (the runtime sends the ADD result back as prevResult), then DEL"
for pod in "${pods[@]}"; do
  cni CHECK "$pod" "$(withprev "${results[$pod]}")" && echo "CHECK $pod: ok"
done
ip -n "${pods[1]}" route del default
echo "(deleted the default route inside ${pods[1]})"
cni CHECK "${pods[1]}" "$(withprev "${results[${pods[1]}]}")" || echo "CHECK ${pods[1]} failed, as it should"
for pod in "${pods[@]}"; do cni DEL "$pod" && echo "DEL $pod: ok"; done
run ip -n "$node" route
run nsenter --net="/var/run/netns/$node" "$bin/vnet" state --data-dir "$work/ipam" --network "$network"
echo
echo "Nothing left: the demo's namespaces are removed on exit."
