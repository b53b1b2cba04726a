#!/usr/bin/env bash
# The plugin's end-to-end checks in real VMs: Vagrant's libvirt provider on this machine, the
# cluster of vagrant/Vagrantfile, then everything torn down. Run as root, from nothing:
#
#   scripts/vm-e2e.sh [--nodes N] [--layouts "transparent kubenet"] [--memory MB] [--one-vm]
#                     [--keep-on-failure]
#
# Phases (each prints a "timing:" line): packages (Debian's vagrant, vagrant-libvirt, libvirt,
# QEMU, mmdebstrap, when missing); binary (dist/bin/vnet, built if missing); image (the node
# image, scripts/vm/image.sh, cached under .tmp/vm/cache by its recipe's hash); box (packed and
# added to a private VAGRANT_HOME); libvirt (virtlogd and libvirtd started inside a network
# namespace and a mount namespace of this script's, with a private /etc/libvirt, /var/lib/libvirt,
# /run and logs); up (`vagrant up --provider=libvirt`: the nodes boot and provision.sh installs
# the plugin through `vnet install`); then per layout: provision (the first layout's is part of
# up; the next ones by provision.sh's own shell path, whose conflist is first compared with
# `vnet install --dry-run`'s on this machine), checks (per node:
# two pods ADDed at once with the real binary through the node's conflist, ping between them and
# from each to every other node's pods, CHECK, a CHECK that must fail, DEL twice, `vnet state`
# clean; containerd's CNI setup); teardown. Exit status: 0 when every check passed.
#
# A VM per node when they fit in memory (free -m); else (or with --one-vm) one VM holding the
# nodes as network namespaces on a bridge, each installed by `vnet install` with directories of its
# own (scripts/vm/node-check.sh mknodes), and the same checks run against each.
#
# Networking: the VMs' networks (an isolated management network with DHCP, the nodes' isolated
# private network) and every address they use live inside the namespace <prefix>-net, where
# libvirtd, its dnsmasq, QEMU and vagrant run; nothing changes in this machine's own namespace.
# Every name made here starts with the prefix (VNET_VM_PREFIX, default vnetvm): the namespace,
# the libvirt domains, networks and pool, the box, .tmp/vm/<prefix>-run. The teardown (an EXIT
# trap, so also on failure or interrupt) destroys the VMs, stops every process in the namespace
# by pid, deletes the namespace and the run directory. The image cache stays.
#
# The guest CPU: this machine's /dev/kvm cannot boot a stock Debian kernel, so QEMU runs as TCG
# (libvirt driver "qemu") with the baseline model the portable build promises to start on: qemu64
# (x86-64 with SSE3; no SSSE3, SSE4, POPCNT, AVX or BMI), whatever this machine's CPU is. The VMs
# run the default, portable build; a this-cpu build (a V8 startup snapshot) would be refused there.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PFX=${VNET_VM_PREFIX:-vnetvm}
NODES=2
LAYOUTS="transparent kubenet"
MEMORY=1024
KEEP_ON_FAILURE=0
ONE_VM=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES="${2:?}"; shift 2 ;;
    --layouts) LAYOUTS="${2:?}"; shift 2 ;;
    --memory) MEMORY="${2:?}"; shift 2 ;;
    --keep-on-failure) KEEP_ON_FAILURE=1; shift ;;
    --one-vm) ONE_VM=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "vm-e2e.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "vm-e2e.sh: run as root" >&2; exit 1; }
for l in $LAYOUTS; do case "$l" in transparent|kubenet) ;; *) echo "vm-e2e.sh: --layouts takes transparent and/or kubenet (got $l)" >&2; exit 2 ;; esac; done
[[ "$NODES" =~ ^[1-6]$ ]] || { echo "vm-e2e.sh: --nodes must be 1 to 6" >&2; exit 2; }
[[ "$PFX" =~ ^[a-z][a-z0-9]{1,10}$ ]] || { echo "vm-e2e.sh: VNET_VM_PREFIX must be a short lowercase name" >&2; exit 2; }

NS=$PFX-net
RUN=$REPO/.tmp/vm/$PFX-run
CACHE=$REPO/.tmp/vm/cache
BOX=$PFX-debian12
SUBNET=10.220.2.0/24
MGMT=192.168.121.0/24
HOLD="" VIRTLOGD="" LIBVIRTD=""
T_START=$(date +%s)
exec 3>&1 4>&2 # the teardown writes here, whatever a function it interrupted had redirected
TIMINGS=()
STATUS=1

say() { printf '[vm-e2e %s] %s\n' "$(date +%T)" "$*"; }
phase_start() { PHASE=$1; PHASE_T0=$(date +%s.%N); say "== $PHASE"; }
phase_end() {
  local s
  s=$(awk -v a="$PHASE_T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  TIMINGS+=("$PHASE ${s}s")
  say "timing: $PHASE ${s}s"
}
# In the namespace: network only (ssh), or network and mount (libvirt, vagrant, virsh).
in_net() { nsenter -t "$HOLD" -n -- "$@"; }
in_ns() { nsenter -t "$HOLD" -n -m -- "$@"; }
vagrant_env() {
  env VAGRANT_HOME="$RUN/vagrant.d" VAGRANT_DOTFILE_PATH="$RUN/dotvagrant" VAGRANT_CWD="$REPO/vagrant" \
    VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_DEFAULT_PROVIDER=libvirt \
    VNET_NODES="$VMS" VNET_SUBNET="$SUBNET" VNET_MEMORY="$MEMORY" VNET_CPUS=1 VNET_BOX="$BOX" VNET_PREFIX="$PFX" \
    VNET_BINARY="$RUN/vnet" VNET_LIBVIRT_DRIVER=qemu VNET_LIBVIRT_URI=qemu:///system \
    VNET_LIBVIRT_POOL="$PFX-pool" VNET_LIBVIRT_MGMT_NAME="$PFX-mgmt" VNET_LIBVIRT_MGMT_ADDRESS="$MGMT" \
    VNET_LIBVIRT_MGMT_MODE=none VNET_LIBVIRT_GRAPHICS=none VNET_LIBVIRT_SERIAL_DIR="$RUN/serial" \
    VNET_LIBVIRT_CPU_MODEL=qemu64 VNET_LIBVIRT_CPU_FEATURES="" "$@"
}

teardown() {
  local rc=$? pids p i
  exec 1>&3 2>&4
  [ "$STATUS" = 0 ] || STATUS=1
  if [ "$STATUS" != 0 ] && [ "$KEEP_ON_FAILURE" = 1 ] && [ -n "$HOLD" ]; then
    say "kept for inspection (--keep-on-failure): nsenter -t $HOLD -n -m; remove later with: kill $HOLD; ip netns del $NS; rm -rf $RUN"
    return
  fi
  phase_start teardown
  set +e
  if [ -n "$HOLD" ] && kill -0 "$HOLD" 2>/dev/null; then
    if [ -n "$LIBVIRTD" ] && kill -0 "$LIBVIRTD" 2>/dev/null; then
      if [ -d "$RUN/dotvagrant" ]; then
        vagrant_env timeout 180 nsenter -t "$HOLD" -n -m -- env HOME="$RUN/home" vagrant destroy -f >"$RUN/destroy.log" 2>&1 \
          || { say "vagrant destroy failed:"; tail -5 "$RUN/destroy.log"; }
      fi
      # Whatever is left of ours in libvirt, by name.
      for d in $(in_ns virsh -q list --all --name 2>/dev/null | grep "^$PFX-"); do in_ns virsh -q destroy "$d" >/dev/null 2>&1; in_ns virsh -q undefine "$d" --remove-all-storage >/dev/null 2>&1; say "removed domain $d"; done
      for n in $(in_ns virsh -q net-list --all --name 2>/dev/null | grep "^$PFX-"); do in_ns virsh -q net-destroy "$n" >/dev/null 2>&1; in_ns virsh -q net-undefine "$n" >/dev/null 2>&1; say "removed network $n"; done
      for p in $(in_ns virsh -q pool-list --all --name 2>/dev/null | grep "^$PFX-"); do in_ns virsh -q pool-destroy "$p" >/dev/null 2>&1; in_ns virsh -q pool-undefine "$p" >/dev/null 2>&1; say "removed pool $p"; done
    fi
    # Every process in our network namespace is ours (libvirtd, virtlogd, dnsmasq, QEMU, the holder): by pid.
    for sig in TERM TERM TERM KILL; do
      pids=$(ip netns pids "$NS" 2>/dev/null)
      [ -n "$pids" ] || break
      kill -s "$sig" $pids 2>/dev/null
      for i in $(seq 20); do sleep 0.25; [ -z "$(ip netns pids "$NS" 2>/dev/null)" ] && break; done
    done
  fi
  [ -z "$HOLD" ] || kill "$HOLD" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$RUN"
  [ ! -e "/run/netns/$NS" ] && [ ! -e "$RUN" ] && say "removed namespace $NS and $RUN" || say "WARNING: could not remove $NS or $RUN"
  phase_end
  local total=$(( $(date +%s) - T_START ))
  say "timings: ${TIMINGS[*]/%/;} total ${total}s"
  if [ "$STATUS" = 0 ]; then say "PASSED: every check on $NODES node(s) in $VMS VM(s), layouts: $LAYOUTS"; exit 0; fi
  [ "$rc" != 0 ] || rc=1
  say "FAILED (exit $rc)"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# Leftovers of an earlier run that was killed hard (no trap): same names, so clear them first.
if [ -e "/run/netns/$NS" ] || [ -e "$RUN" ]; then
  say "removing an earlier run's $NS / $RUN"
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$RUN"
fi

# --- packages ---
phase_start packages
need=()
for pair in vagrant:vagrant vagrant-libvirt:vagrant-libvirt libvirtd:libvirt-daemon-system virsh:libvirt-clients \
  qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mmdebstrap:mmdebstrap sfdisk:fdisk mkfs.ext4:e2fsprogs \
  dnsmasq:dnsmasq-base iptables:iptables ssh:openssh-client jq:jq nsenter:util-linux; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if [ "$cmd" = vagrant-libvirt ]; then dpkg -s vagrant-libvirt >/dev/null 2>&1 || need+=("$pkg"); continue; fi
  command -v "$cmd" >/dev/null || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install ${need[*]} (services are not started: there is no init here, and policy-rc.d is honoured)"
  policy_made=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy_made=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ "$policy_made" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi
say "vagrant $(vagrant --version 2>/dev/null | awk '{print $2}'), vagrant-libvirt $(dpkg-query -W -f='${Version}' vagrant-libvirt), libvirt $(libvirtd --version | awk '{print $NF}'), $(qemu-system-x86_64 --version | head -1)"
phase_end

# --- the binary ---
phase_start binary
# The portable build, the one users copy to nodes (a this-cpu build is rebuilt portable here).
if [ ! -x dist/bin/vnet ] || ! dist/bin/vnet version 2>/dev/null | grep -q '^build: portable'; then
  say "dist/bin/vnet is missing or not the portable build: ./scripts/deps.sh --build"
  VNET_SEA=portable ./scripts/deps.sh --build
fi
[ "$(stat -c %i dist/bin/vnet)" = "$(stat -c %i dist/bin/vnet-ipam)" ] || say "note: dist/bin/vnet-ipam is not a hard link of vnet (provision makes its own)"
# This run's copy: the repository's may be rebuilt while the VMs come up.
mkdir -p "$RUN"
cp dist/bin/vnet "$RUN/vnet"
say "dist/bin/vnet: $(du -m "$RUN/vnet" | cut -f1) MiB, $("$RUN/vnet" version | head -1), built $(date -r dist/bin/vnet +%FT%T), sha256 $(sha256sum "$RUN/vnet" | cut -c1-12)"
say "guest CPU: qemu64, the portable build's baseline (this machine: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
phase_end

# --- memory: a VM per node if they fit, else one VM with the nodes inside ---
avail=$(free -m | awk '/^Mem:/{print $7}')
want=$(( NODES * (MEMORY + 300) + 1024 ))
VMS=$NODES
if [ "$ONE_VM" = 1 ] || [ "$avail" -lt "$want" ]; then VMS=1; fi
[ "$avail" -ge $(( MEMORY + 300 + 1024 )) ] || { say "not enough memory for even one VM of $MEMORY MiB (${avail} MiB available)"; exit 1; }
say "memory: ${avail} MiB available (free -m); $NODES VMs of $MEMORY MiB need ~${want} MiB: $VMS VM(s)$([ "$VMS" = 1 ] && [ "$NODES" -gt 1 ] && echo ", the $NODES nodes as namespaces inside it")"
# Also the other provision path's conflist: provision.sh's own must be what `vnet install` writes.
for l in $LAYOUTS; do
  if [ "$l" = transparent ]; then a=(--range "$SUBNET,10.220.2.32,10.220.2.63,10.220.2.1"); else a=(--pod-cidr 10.244.0.0/24 --no-masq 10.244.0.0/16 --no-masq "$SUBNET"); fi
  if ! diff <(bash vagrant/provision.sh --node-index 0 --layout "$l" "${a[@]}" --print-conflist | jq -S .) \
            <("$RUN/vnet" install --layout "$l" "${a[@]}" --dry-run | sed -n '2,/^}/p' | jq -S .) >"$RUN/conflist.diff"; then
    say "provision.sh's $l conflist differs from \`vnet install --dry-run\`'s:"; cat "$RUN/conflist.diff"; exit 1
  fi
done
say "provision.sh --installer shell writes the conflist \`vnet install\` writes (layouts: $LAYOUTS)"

# --- image ---
phase_start image
mkdir -p "$CACHE" "$RUN"
IMAGE=$(scripts/vm/image.sh "$CACHE")
[ -f "$IMAGE" ] || { say "scripts/vm/image.sh gave no image (got: $IMAGE)"; exit 1; }
phase_end

# --- box ---
phase_start box
mkdir -p "$RUN/box" "$RUN/vagrant.d" "$RUN/home" "$RUN/serial"
ln "$IMAGE" "$RUN/box/box.img" 2>/dev/null || cp "$IMAGE" "$RUN/box/box.img"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %s}\n' "$(cat "$(dirname "$IMAGE")/virtual_size")" > "$RUN/box/metadata.json"
cat > "$RUN/box/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
end
EOF
tar -C "$RUN/box" -cf "$RUN/$BOX.box" metadata.json Vagrantfile box.img
rm -rf "$RUN/box"
vagrant_env env HOME="$RUN/home" vagrant box add --name "$BOX" "$RUN/$BOX.box" >"$RUN/box-add.log" 2>&1 || { cat "$RUN/box-add.log"; exit 1; }
rm -f "$RUN/$BOX.box"
say "box $BOX added to $RUN/vagrant.d"
phase_end

# --- libvirt, inside our namespaces ---
phase_start libvirt
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
# The holder: a process in the network namespace and in a private mount namespace of its own,
# where libvirt's directories are this run's. `ip netns exec` and `unshare` exec in place: $! is it.
# setsid: a Ctrl-C on the terminal reaches this script and vagrant, not the daemons, which the
# teardown still needs (it stops them itself, by pid).
setsid ip netns exec "$NS" unshare --mount --propagation private sleep infinity &
HOLD=$!
for i in $(seq 50); do [ "$(readlink /proc/$HOLD/ns/mnt 2>/dev/null)" != "$(readlink /proc/self/ns/mnt)" ] && break; sleep 0.1; done
[ "$(stat -L -c %i /proc/$HOLD/ns/net)" = "$(stat -L -c %i "/run/netns/$NS")" ] || { say "the holder is not in $NS"; exit 1; }
R=$RUN/root
mkdir -p "$R/etc" "$R/var/lib/libvirt/images" "$R/run/libvirt" "$R/run/lock" "$R/var/log/libvirt" "$R/var/cache/libvirt"
cp -a /etc/libvirt "$R/etc/libvirt"
# libvirt's default network is NAT: never started here.
rm -f "$R/etc/libvirt/qemu/networks/autostart/"* "$R/etc/libvirt/qemu/networks/default.xml"
cat >> "$R/etc/libvirt/qemu.conf" <<'EOF'
# vm-e2e.sh: root-owned QEMU (else libvirt re-probes QEMU on every call), no per-domain
# namespaces, cgroups or security driver in this sandbox.
user = "root"
group = "root"
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
remember_owner = 0
EOF
printf 'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n' >> "$R/etc/libvirt/libvirtd.conf"
for d in etc/libvirt var/lib/libvirt var/log/libvirt var/cache/libvirt run; do
  nsenter -t "$HOLD" -m -- mount --bind "$R/$d" "/$d"
done
# setsid and nsenter exec in place (no fork: not a group leader; no pid namespace): $! is the daemon.
setsid nsenter -t "$HOLD" -n -m -- virtlogd >"$RUN/virtlogd.out" 2>&1 &
VIRTLOGD=$!
setsid nsenter -t "$HOLD" -n -m -- libvirtd >"$RUN/libvirtd.out" 2>&1 &
LIBVIRTD=$!
for i in $(seq 100); do in_ns virsh -c qemu:///system -q version >/dev/null 2>&1 && break; sleep 0.2; done
in_ns virsh -c qemu:///system -q version >/dev/null || { say "libvirtd did not answer"; cat "$RUN/libvirtd.out"; exit 1; }
in_ns virsh -q pool-define-as "$PFX-pool" dir --target /var/lib/libvirt/images >/dev/null
in_ns virsh -q pool-start "$PFX-pool" >/dev/null
say "virtlogd pid $VIRTLOGD, libvirtd pid $LIBVIRTD in $NS; pool $PFX-pool; $(in_ns virsh -q net-list --all | wc -l) network(s) defined"
phase_end

ssh_() { local n=$1; shift; in_net ssh -F "$RUN/ssh_config" -o LogLevel=ERROR "$n" "$@"; }
vms=()
for ((i = 0; i < VMS; i++)); do vms+=("node$i"); done
# The nodes the checks run on: a VM each, or namespaces in the one VM.
T_VM=() T_NS=()
for ((i = 0; i < NODES; i++)); do
  if [ "$VMS" = "$NODES" ]; then T_VM+=("node$i"); T_NS+=(""); else T_VM+=(node0); T_NS+=("$PFX-node$i"); fi
done
check_() { local vm=$1 ns=$2; shift 2; ssh_ "$vm" sudo VNET_CHECK_PREFIX="$PFX" VNET_CHECK_NODE="$ns" bash /tmp/vnet-check.sh "${@@Q}"; }

# on_nodes FN: node-check.sh on every node at once, with the arguments FN gives for node i;
# output in node order; fails if any node failed.
on_nodes() {
  local fn=$1 pids=() rc=0 k args
  for k in "${!T_VM[@]}"; do
    mapfile -t args < <("$fn" "$k")
    check_ "${T_VM[$k]}" "${T_NS[$k]}" "${args[@]}" >"$RUN/check$k.out" 2>&1 &
    pids+=($!)
  done
  for k in "${!T_VM[@]}"; do
    wait "${pids[$k]}" || rc=1
    sed "s/^/  /" "$RUN/check$k.out"
  done
  return $rc
}

declare -A IPS
step_add() { printf '%s\n' add "n${1}p0" "n${1}p1"; }
# Every pod pings the other pod of its node and both pods of every other node; CHECK; state.
step_verify() {
  local i=$1 j others=""
  for j in "${!T_VM[@]}"; do [ "$j" = "$i" ] || others+=" ${IPS[$j]}"; done
  read -r a b <<<"${IPS[$i]}"
  printf '%s\n' seq "ping n${i}p0 $b$others" "ping n${i}p1 $a$others" "check n${i}p0 n${i}p1" "state 2"
}
step_teardown() { printf '%s\n' seq "tamper n${1}p1" "del n${1}p0 n${1}p1" "clean n${1}p0 n${1}p1"; }

run_checks() {
  local k
  on_nodes step_add > "$RUN/add.out" || { cat "$RUN/add.out"; return 1; }
  grep -v '^  pod ' "$RUN/add.out" || true
  for k in "${!T_VM[@]}"; do
    IPS[$k]=$(awk -v p="n${k}p" '$1 == "pod" && index($2, p) == 1 {print $3}' "$RUN/add.out" | xargs)
    [ "$(wc -w <<<"${IPS[$k]}")" = 2 ] || { say "node$k: no two pod addresses from ADD"; return 1; }
  done
  on_nodes step_verify || return 1
  on_nodes step_teardown || return 1
}

# --- up ---
first=${LAYOUTS%% *}
phase_start up
say "vagrant up --provider=libvirt: $VMS VM(s), layout $first"
if ! vagrant_env VNET_LAYOUT="$first" nsenter -t "$HOLD" -n -m -- env HOME="$RUN/home" vagrant up --provider=libvirt >"$RUN/up.log" 2>&1; then
  tail -40 "$RUN/up.log"; for f in "$RUN"/serial/*.log; do [ -f "$f" ] && { say "console $f:"; tail -15 "$f"; }; done
  exit 1
fi
grep -E 'provision.sh|installed|wrote|route |containerd |ready' "$RUN/up.log" | sed 's/^/  /'
vagrant_env nsenter -t "$HOLD" -n -m -- env HOME="$RUN/home" vagrant ssh-config > "$RUN/ssh_config"
for n in "${vms[@]}"; do ssh_ "$n" 'cat > /tmp/vnet-check.sh' < scripts/vm/node-check.sh; done
phase_end

for layout in $LAYOUTS; do
  if [ "$layout" != "$first" ]; then
    phase_start "provision-$layout"
    # The other provision path too: this layout without `vnet install` (provision.sh's own).
    # One `vagrant provision` per node, at once (one runs them one after the other).
    pids=()
    for n in "${vms[@]}"; do
      vagrant_env VNET_LAYOUT="$layout" VNET_INSTALLER=shell nsenter -t "$HOLD" -n -m -- env HOME="$RUN/home" \
        vagrant provision "$n" >"$RUN/provision-$layout-$n.log" 2>&1 & pids+=($!)
    done
    rc=0
    for k in "${!vms[@]}"; do wait "${pids[$k]}" || { rc=1; tail -30 "$RUN/provision-$layout-${vms[$k]}.log"; }; done
    [ $rc = 0 ] || exit 1
    cat "$RUN"/provision-"$layout"-node*.log > "$RUN/provision-$layout.log"
    grep -E 'provision.sh|installed|wrote|route |containerd |ready' "$RUN/provision-$layout.log" | sed 's/^/  /'
    phase_end
  fi
  phase_start "checks-$layout"
  for n in "${vms[@]}"; do
    ssh_ "$n" "sudo cat /etc/cni/net.d/10-vnet.conflist" | jq -c '{name, mode: .plugins[0].mode, ranges: .plugins[0].ipam.ranges}' | sed "s/^/  $n conflist: /"
    check_ "$n" "" containerd | sed 's/^/  /'
  done
  if [ "$VMS" != "$NODES" ]; then check_ node0 "" mknodes "$NODES" "$layout" "$SUBNET" | sed 's/^/  /'; fi
  run_checks
  if [ "$VMS" != "$NODES" ]; then check_ node0 "" rmnodes | sed 's/^/  /'; fi
  phase_end
done
STATUS=0
