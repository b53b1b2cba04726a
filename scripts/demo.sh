#!/usr/bin/env bash
# The demo: transparent mode for real, in namespaces it makes and removes. A namespace plays an
# AKS node (eth0 10.224.0.4/16 towards a namespace playing the VNet gateway 10.224.0.1), two more
# play pods; the plugin runs inside the node namespace exactly as a container runtime runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (sudo ./scripts/demo.sh): it creates network namespaces" >&2; exit 1; }
./scripts/deps.sh
npm run --silent build

p="vdemo$$"
node="$p-node" gw="$p-vnet" pods=("$p-pod1" "$p-pod2")
work=$(mktemp -d "/tmp/$p.XXXX")
cleanup() {
  for ns in "${pods[@]}" "$node" "$gw"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

bin=$(pwd)/dist/bin
conf=$(sed -e "s#\"logFile\": \"/var/log/vnet.log\"#\"logFile\": \"$work/vnet.log\"#" \
           -e "s#\"type\": \"vnet-ipam\",#\"type\": \"vnet-ipam\", \"dataDir\": \"$work/ipam\",#" \
           conf/10-azure-transparent.conflist | python3 -c 'import json,sys; c=json.load(sys.stdin); p=c["plugins"][0]; p.update(name=c["name"], cniVersion=c["cniVersion"]); print(json.dumps(p))')

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
ip -n "$node" addr add 10.224.0.4/16 dev eth0 && ip -n "$node" link set eth0 up
ip -n "$gw" addr add 10.224.0.1/16 dev vnet0 && ip -n "$gw" link set vnet0 up
ip -n "$node" route add default via 10.224.0.1
run ip -n "$node" -br addr

say "What ADD will do (vnet explain runs nothing)"
printf '%s' "$conf" > "$work/net.conf"
run "$bin/vnet" explain --conf "$work/net.conf" --container-id "demo-${pods[0]}" --netns "/var/run/netns/${pods[0]}"

declare -A ips results
for pod in "${pods[@]}"; do
  say "ADD $pod (CNI_COMMAND=ADD, as kubelet's runtime calls it)"
  result=$(cni ADD "$pod")
  echo "$result" | python3 -m json.tool
  results[$pod]=$result
  ips[$pod]=$(echo "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["address"].split("/")[0])')
  # The VNet learns which node holds the pod (Azure programs this in its fabric).
  ip -n "$gw" route add "${ips[$pod]}/32" via 10.224.0.4
done

say "Inside ${pods[0]}: the address keeps the subnet's /16 but every packet goes to 169.254.1.1"
run ip -n "${pods[0]}" addr show eth0
run ip -n "${pods[0]}" route
run ip -n "${pods[0]}" neigh
say "On the node: a /32 route per pod through its azv veth (MAC aa:aa:aa:aa:aa:aa, proxy ARP on)"
run ip -n "$node" route
run ip -n "$node" -br link
run nsenter --net="/var/run/netns/$node" "$bin/vnet" state --data-dir "$work/ipam" --network azure
say "The plugin's log of those ADDs ($work/vnet.log)"
cat "$work/vnet.log"

say "Traffic"
run ip netns exec "${pods[0]}" ping -c 2 -W 2 "${ips[${pods[1]}]}"
run ip netns exec "${pods[1]}" ping -c 2 -W 2 10.224.0.1

say "CHECK (the runtime sends the ADD result back as prevResult), then DEL"
for pod in "${pods[@]}"; do
  withprev=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["prevResult"]=json.loads(sys.argv[2]); print(json.dumps(c))' "$conf" "${results[$pod]}")
  cni CHECK "$pod" "$withprev" && echo "CHECK $pod: ok"
done
ip -n "${pods[1]}" route del default
echo "(deleted the default route inside ${pods[1]})"
withprev=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["prevResult"]=json.loads(sys.argv[2]); print(json.dumps(c))' "$conf" "${results[${pods[1]}]}")
cni CHECK "${pods[1]}" "$withprev" || echo "CHECK ${pods[1]} failed, as it should"
for pod in "${pods[@]}"; do cni DEL "$pod" && echo "DEL $pod: ok"; done
run ip -n "$node" route
run nsenter --net="/var/run/netns/$node" "$bin/vnet" state --data-dir "$work/ipam" --network azure
echo
echo "Nothing left: the demo's namespaces are removed on exit."
