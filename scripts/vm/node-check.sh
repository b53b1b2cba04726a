#!/usr/bin/env bash
# The plugin's checks on one node, run inside the VM as root by scripts/vm-e2e.sh (copied in).
# Pods are network namespaces named <prefix>-pod-<pod>; the node's conflist is run the way libcni
# runs it (ADD through every plugin in order, each given the previous result as prevResult; CHECK
# through every plugin with the cached result; DEL in reverse order), with the real binaries
# from CNI_PATH and CNI_* variables.
#
#   node-check.sh add POD…            ADD the pods at once; prints "pod POD ADDRESS" per pod
#   node-check.sh ping POD ADDRESS…   from POD, each address must answer
#   node-check.sh check POD…          CHECK each pod (must pass)
#   node-check.sh tamper POD          delete the pod's default route: CHECK must fail, naming it
#   node-check.sh del POD…            DEL each pod, twice (DEL must be idempotent)
#   node-check.sh state N             `vnet state`: N allocations, no leak (exit 0)
#   node-check.sh clean POD…          those pods' namespaces gone, no azv veth, no cached result,
#                                     `vnet state` clean
#   node-check.sh containerd          containerd running with its CRI plugin reading our CNI dirs
#   node-check.sh seq 'CMD ARGS' …    each of those in turn, stopping at the first that fails
#
# One VM can hold several nodes (when the machine has no room for a VM per node): each is a
# network namespace <prefix>-node<i> on a bridge in <prefix>-fabric (node i at .4+i of SUBNET),
# installed by `vnet install` with its own bin, conf and data directories under
# /var/lib/<prefix>-nodes/<node>. With VNET_CHECK_NODE=<prefix>-node<i> every command above runs
# against that node instead of the VM itself.
#
#   node-check.sh mknodes N LAYOUT SUBNET     make nodes 0…N-1 (transparent or kubenet)
#   node-check.sh rmnodes                     remove them
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PFX=${VNET_CHECK_PREFIX:-vnetvm}
NODE_NS=${VNET_CHECK_NODE:-}
if [ -n "$NODE_NS" ]; then
  NODE_DIR=/var/lib/$PFX-nodes/$NODE_NS
  CONF=$NODE_DIR/net.d/10-vnet.conflist
  CNI_DIRS=$NODE_DIR/bin:/usr/lib/cni
  VNET=$NODE_DIR/bin/vnet
  IN_NODE=(nsenter "--net=/run/netns/$NODE_NS")
  CACHE=/run/$PFX-check/$NODE_NS
  node="$(hostname)/$NODE_NS"
else
  CONF=${VNET_CHECK_CONF:-/etc/cni/net.d/10-vnet.conflist}
  CNI_DIRS=${VNET_CHECK_CNI_PATH:-/opt/cni/bin:/usr/lib/cni}
  VNET=vnet
  IN_NODE=()
  CACHE=/run/$PFX-check/vm
  node=$(hostname)
fi
fail() { echo "FAIL [$node] $*" >&2; exit 1; }
ok() { echo "ok   [$node] $*"; }
now_ms() { date +%s%3N; }
podns() { echo "$PFX-pod-$1"; }

plugin_bin() {
  local d
  for d in ${CNI_DIRS//:/ }; do [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }; done
  return 1
}
nplugins() { jq '.plugins | length' "$CONF"; }

# call VERB INDEX POD [PREV_RESULT_FILE]: one plugin of the list, as libcni calls it: stdout is
# the result (or the error), stderr is not part of the protocol (libcni passes it to the
# runtime's own log). Prints stdout, and stderr too when the call failed; a call that succeeded
# and still wrote to stderr leaves a note, shown when the command ends.
call() {
  local verb=$1 i=$2 pod=$3 prev=${4:-} type bin cfg err rc=0
  type=$(jq -r ".plugins[$i].type" "$CONF")
  bin=$(plugin_bin "$type") || { echo "plugin $type is on none of $CNI_DIRS"; return 1; }
  if [ -n "$prev" ]; then
    cfg=$(jq -c --slurpfile p "$prev" ".plugins[$i] + {name: .name, cniVersion: .cniVersion, prevResult: \$p[0]}" "$CONF")
  else
    cfg=$(jq -c ".plugins[$i] + {name: .name, cniVersion: .cniVersion}" "$CONF")
  fi
  err=$(mktemp "$CACHE/.stderr.XXXXXX") || { echo "mktemp in $CACHE failed"; return 1; }
  CNI_COMMAND=$verb CNI_CONTAINERID="$PFX-$pod" CNI_NETNS="/run/netns/$(podns "$pod")" CNI_IFNAME=eth0 CNI_PATH="$CNI_DIRS" \
    "${IN_NODE[@]}" "$bin" <<<"$cfg" 2>"$err" || rc=$?
  if [ -s "$err" ]; then
    if [ $rc = 0 ]; then echo "note [$node] $type $verb $pod succeeded and wrote to stderr: $(head -c 600 "$err" | tr '\n' ' ')" >>"$CACHE/.notes"
    else cat "$err"; fi
  fi
  rm -f "$err"
  return $rc
}
# The notes calls left (above), once each, when a command ends.
show_notes() { [ -s "$CACHE/.notes" ] && cat "$CACHE/.notes"; rm -f "$CACHE/.notes"; return 0; }

del_chain() {
  local pod=$1 i n out rc=0 prev=""
  n=$(nplugins)
  [ -f "$CACHE/$pod.json" ] && prev="$CACHE/$pod.json"
  for ((i = n - 1; i >= 0; i--)); do
    out=$(call DEL "$i" "$pod" "$prev") || { echo "DEL failed in plugin $(jq -r ".plugins[$i].type" "$CONF"): $out"; rc=1; }
  done
  return $rc
}

add_one() {
  local pod=$1 i n out t0 prev=""
  ip netns add "$(podns "$pod")"
  ip -n "$(podns "$pod")" link set lo up
  n=$(nplugins)
  t0=$(now_ms)
  for ((i = 0; i < n; i++)); do
    if ! out=$(call ADD "$i" "$pod" "$prev"); then
      echo "ADD failed in plugin $(jq -r ".plugins[$i].type" "$CONF"): $out"
      del_chain "$pod" >/dev/null || true # as libcni: a failed ADD is followed by a DEL
      return 1
    fi
    printf '%s\n' "$out" > "$CACHE/$pod.$i.json"
    prev="$CACHE/$pod.$i.json"
  done
  mv "$prev" "$CACHE/$pod.json"
  rm -f "$CACHE/$pod".[0-9]*.json
  echo "pod $pod $(jq -r '.ips[0].address' "$CACHE/$pod.json" | cut -d/ -f1) $(( $(now_ms) - t0 ))ms"
}

cmd=${1:-}
shift || true
case "$cmd" in add|check|tamper|del|clean) mkdir -p "$CACHE"; trap show_notes EXIT ;; esac
case "$cmd" in
  add)
    [ $# -gt 0 ] || fail "add: no pod"
    pids=()
    pods=("$@")
    for pod in "${pods[@]}"; do add_one "$pod" > "$CACHE/$pod.add.out" 2>&1 & pids+=($!); done
    rc=0
    for k in "${!pids[@]}"; do
      pod=${pods[$k]}
      if wait "${pids[$k]}"; then
        line=$(cat "$CACHE/$pod.add.out")
        read -r _ _ ip ms <<<"$line"
        ok "ADD $pod: $ip in $ms ($(nplugins) plugins: $(jq -r '[.plugins[].type] | join(", ")' "$CONF"))"
        echo "pod $pod $ip"
      else
        echo "FAIL [$node] ADD $pod: $(cat "$CACHE/$pod.add.out")" >&2; rc=1
      fi
      rm -f "$CACHE/$pod.add.out"
    done
    exit $rc ;;
  ping)
    pod=${1:?ping POD ADDRESS…}; shift
    for ip in "$@"; do
      if ip netns exec "$(podns "$pod")" ping -q -c 1 -w 15 "$ip" >/dev/null 2>&1; then ok "ping $pod -> $ip"
      else fail "ping $pod -> $ip: no answer within 15 s; pod routes: $(ip -n "$(podns "$pod")" route | tr '\n' ';') node routes: $("${IN_NODE[@]}" ip route | tr '\n' ';')"; fi
    done ;;
  check)
    for pod in "$@"; do
      n=$(nplugins)
      for ((i = 0; i < n; i++)); do
        out=$(call CHECK "$i" "$pod" "$CACHE/$pod.json") || fail "CHECK $pod in plugin $(jq -r ".plugins[$i].type" "$CONF"): $out"
      done
      ok "CHECK $pod ($n plugins)"
    done ;;
  tamper)
    pod=${1:?tamper POD}
    ip -n "$(podns "$pod")" route del default
    if out=$(call CHECK 0 "$pod" "$CACHE/$pod.json"); then fail "CHECK $pod passed with its default route deleted"; fi
    echo "$out" | grep -qi 'route' || fail "CHECK $pod failed without naming the route: $out"
    ok "CHECK $pod fails once its default route is gone: $(jq -r '.msg // .' <<<"$out" 2>/dev/null | head -1)" ;;
  del)
    for pod in "$@"; do
      out=$(del_chain "$pod") || fail "DEL $pod: $out"
      out=$(del_chain "$pod") || fail "DEL $pod a second time (must succeed): $out"
      ip netns del "$(podns "$pod")"
      rm -f "$CACHE/$pod.json"
      ok "DEL $pod (twice)"
    done ;;
  state)
    want=${1:?state N}
    set +e; out=$("${IN_NODE[@]}" "$VNET" state --conf "$CONF" --json); rc=$?; set -e
    [ $rc = 0 ] || fail "vnet state exit $rc: $("${IN_NODE[@]}" "$VNET" state --conf "$CONF" 2>&1 | tail -20)"
    got=$(jq '.allocations | length' <<<"$out")
    leaks=$(jq '.leaks | length' <<<"$out")
    [ "$got" = "$want" ] && [ "$leaks" = 0 ] || fail "vnet state: $got allocations (want $want), $leaks leaks: $out"
    ok "vnet state: $got allocation(s), no leak" ;;
  clean)
    for pod in "$@"; do [ ! -e "/run/netns/$(podns "$pod")" ] || fail "pod namespace $(podns "$pod") left"; done
    veths=$("${IN_NODE[@]}" ip -o link show | awk -F': ' '{print $2}' | grep '^azv' || true)
    [ -z "$veths" ] || fail "azv veths left: $veths"
    [ -z "$(ls -A "$CACHE")" ] || fail "cached results left: $(ls -A "$CACHE")"
    set +e; out=$("${IN_NODE[@]}" "$VNET" state --conf "$CONF" 2>&1); rc=$?; set -e
    [ $rc = 0 ] || fail "vnet state exit $rc: $out"
    rmdir "$CACHE"; rmdir "$(dirname "$CACHE")" 2>/dev/null || true
    ok "clean: no pod namespace, no azv veth; vnet state exit 0"
    echo "$out" | sed "s|^|     [$node] state: |" ;;
  containerd)
    command -v containerd >/dev/null || { echo "skip [$node] no containerd in this image"; exit 0; }
    systemctl is-active -q containerd || fail "containerd is not active"
    ctr plugins ls | grep -E 'io\.containerd\.grpc\.v1[[:space:]]+cri[[:space:]]' | grep -qw ok || fail "containerd's CRI plugin is not ok: $(ctr plugins ls | grep cri)"
    dump=$(containerd config dump)
    grep -q 'bin_dir = "/opt/cni/bin"' <<<"$dump" && grep -q 'conf_dir = "/etc/cni/net.d"' <<<"$dump" || fail "containerd's CNI dirs are not /opt/cni/bin and /etc/cni/net.d"
    for p in vnet vnet-ipam portmap loopback; do [ -x "/opt/cni/bin/$p" ] || fail "/opt/cni/bin/$p is missing (containerd looks there only)"; done
    ok "containerd $(containerd --version | awk '{print $3}'): CRI plugin ok, CNI from /opt/cni/bin and /etc/cni/net.d (vnet, vnet-ipam, portmap, loopback there)" ;;
  mknodes)
    n=${1:?mknodes N LAYOUT SUBNET} layout=${2:?} subnet=${3:?}
    base=${subnet%.*}
    bash "$0" rmnodes >/dev/null
    fab=$PFX-fabric
    ip netns add "$fab"
    ip -n "$fab" link set lo up
    ip -n "$fab" link add br0 type bridge
    ip -n "$fab" link set br0 up
    for ((i = 0; i < n; i++)); do
      ns=$PFX-node$i d=/var/lib/$PFX-nodes/$PFX-node$i
      ip netns add "$ns"
      ip -n "$ns" link set lo up
      ip -n "$fab" link add "n$i" type veth peer name eth0 netns "$ns"
      ip -n "$fab" link set "n$i" master br0 up
      ip -n "$ns" addr add "$base.$((4 + i))/24" dev eth0
      ip -n "$ns" link set eth0 up
      args=(install --layout "$layout" --bin-dir "$d/bin" --conf-dir "$d/net.d" --data-dir "$d/ipam" --log-file "$d/vnet.log")
      if [ "$layout" = transparent ]; then
        args+=(--range "$subnet,$base.$((32 * (i + 1))),$base.$((32 * (i + 1) + 31)),$base.1")
      else
        args+=(--pod-cidr "10.244.$i.0/24" --no-masq 10.244.0.0/16 --no-masq "$subnet")
      fi
      for ((j = 0; j < n; j++)); do
        [ "$j" = "$i" ] && continue
        if [ "$layout" = transparent ]; then args+=(--peer "$base.$((32 * (j + 1)))/27=$base.$((4 + j))")
        else args+=(--peer "10.244.$j.0/24=$base.$((4 + j))"); fi
      done
      out=$(nsenter "--net=/run/netns/$ns" /opt/cni/bin/vnet "${args[@]}" 2>&1) || fail "vnet ${args[*]} in $ns: $out"
      ok "node $ns ($base.$((4 + i))): vnet ${args[*]}"
    done ;;
  rmnodes)
    for path in /run/netns/"$PFX"-node* /run/netns/"$PFX"-fabric; do
      ns=${path##*/}
      [[ -e $path && $ns =~ ^$PFX-(node[0-9]+|fabric)$ ]] && ip netns del "$ns"
    done
    rm -rf "/var/lib/$PFX-nodes"
    ok "no node namespaces" ;;
  seq)
    for c in "$@"; do
      # shellcheck disable=SC2086 # word splitting intended: one command and its arguments
      bash "$0" $c || exit 1
    done ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
