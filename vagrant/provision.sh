#!/usr/bin/env bash
# Provisions one node of the Vagrant cluster with vnet-cni. Runs inside the VM as root; the
# Vagrantfile passes every parameter explicitly (nothing is guessed from the VM):
#
#   provision.sh --node-index I --node-ip IP --layout transparent|kubenet
#                (--range SUBNET,START,END,GATEWAY | --pod-cidr CIDR) [--no-masq CIDR]…
#                [--peer CIDR=NODE_IP]… [--binary /tmp/vnet] [--installer auto|vnet|shell]
#                [--containerd auto|yes|no] [--no-apt] [--print-conflist]
#
#   transparent  Azure CNI's layout: this node's pods come from its own slice (START-END) of the
#                nodes' subnet; the other nodes reach them by a route to the slice via this node.
#   kubenet      this node's pods come from its own --pod-cidr on cbr0, masqueraded when they
#                leave the cluster (--no-masq: the cluster's pod CIDR and the nodes' subnet).
#   --peer       another node's pod range and that node's address: a route is added (and kept
#                across reboots by vnet-peer-routes.service); routes from an earlier run that are
#                no longer given are removed.
#
# What it does: the executable (the uploaded --binary) into /opt/cni/bin as vnet and vnet-ipam (one
# file, two names), /usr/local/bin/vnet linked to it, this node's conflist as
# /etc/cni/net.d/10-vnet.conflist, the routes to the peers' pod ranges and, when containerd is
# there, containerd configured for CNI the way kind configures it. With --installer auto (the
# default) the binary's own `vnet install` does the first three when the binary has it;
# --installer shell does them here (IPv4, one range, the same conflist `vnet install` writes).
# --print-conflist prints the conflist the shell path would write, and nothing else.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

index="" node_ip="" layout="" range="" pod_cidr="" binary=/tmp/vnet installer=auto containerd=auto apt=1 print_only=0
no_masq=() peers=()
die() { echo "provision.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --node-index) index="${2:?}"; shift 2 ;;
    --node-ip) node_ip="${2:?}"; shift 2 ;;
    --layout) layout="${2:?}"; shift 2 ;;
    --range) range="${2:?}"; shift 2 ;;
    --pod-cidr) pod_cidr="${2:?}"; shift 2 ;;
    --no-masq) no_masq+=("${2:?}"); shift 2 ;;
    --peer) peers+=("${2:?}"); shift 2 ;;
    --binary) binary="${2:?}"; shift 2 ;;
    --installer) installer="${2:?}"; shift 2 ;;
    --containerd) containerd="${2:?}"; shift 2 ;;
    --no-apt) apt=0; shift ;;
    --print-conflist) print_only=1; shift ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$index" =~ ^[0-9]+$ ]] || die "--node-index N is required"
case "$layout" in
  transparent) [ -n "$range" ] && [ -z "$pod_cidr" ] || die "--layout transparent takes --range SUBNET,START,END,GATEWAY" ;;
  kubenet) [ -n "$pod_cidr" ] && [ -z "$range" ] || die "--layout kubenet takes --pod-cidr CIDR"
           [ ${#no_masq[@]} -gt 0 ] || die "--layout kubenet masquerades what leaves the cluster: give --no-masq for the pod CIDR and the nodes' subnet" ;;
  *) die "--layout must be transparent or kubenet" ;;
esac
case "$installer" in auto|vnet|shell) ;; *) die "--installer must be auto, vnet or shell" ;; esac
case "$containerd" in auto|yes|no) ;; *) die "--containerd must be auto, yes or no" ;; esac
for p in "${peers[@]}"; do [[ "$p" == */*=* ]] || die "--peer $p: expected CIDR=NODE_IP"; done

json_list() { local out="" x; for x in "$@"; do out+="${out:+, }\"$x\""; done; echo "[$out]"; }

# The conflist `vnet install` writes for these parameters (src/cli/install.ts, nodeConflist).
conflist() {
  if [ "$layout" = transparent ]; then
    IFS=, read -r subnet start end gw <<<"$range"
    cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "azure",
  "plugins": [
    {
      "type": "vnet",
      "mode": "transparent",
      "logFile": "/var/log/vnet.log",
      "capabilities": { "ips": true, "mac": true },
      "ipam": {
        "type": "vnet-ipam",
        "ranges": [[{ "subnet": "$subnet", "rangeStart": "$start", "rangeEnd": "$end", "gateway": "$gw" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }
  ]
}
EOF
  else
    local net=${pod_cidr%/*} a b c d
    IFS=. read -r a b c d <<<"$net"
    cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kubenet",
  "plugins": [
    {
      "type": "vnet",
      "mode": "bridge",
      "bridge": "cbr0",
      "isGateway": true,
      "hairpinMode": true,
      "ipMasq": true,
      "ipMasqExclude": $(json_list "${no_masq[@]}"),
      "logFile": "/var/log/vnet.log",
      "capabilities": { "ips": true, "mac": true },
      "ipam": {
        "type": "vnet-ipam",
        "ranges": [[{ "subnet": "$pod_cidr", "gateway": "$a.$b.$c.$((d + 1))" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }
  ]
}
EOF
  fi
}
if [ "$print_only" = 1 ]; then conflist; exit 0; fi
[ "$(id -u)" = 0 ] || die "run as root"
echo "provision.sh: node $index ($node_ip), layout $layout, ${#peers[@]} peer(s)"

# --- what the plugin needs on the node (a stock box may lack some; the e2e image has all) ---
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
command -v ping >/dev/null || need+=(iputils-ping)
{ [ "$layout" = kubenet ] && ! command -v nft >/dev/null; } && need+=(nftables)
[ "$containerd" = yes ] && ! command -v containerd >/dev/null && need+=(containerd containernetworking-plugins)
if [ ${#need[@]} -gt 0 ]; then
  [ "$apt" = 1 ] || { echo "provision.sh: missing ${need[*]} and --no-apt given" >&2; exit 1; }
  echo "provision.sh: apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- the executable: out of the upload path first, so the next upload cannot write into it ---
[ -f "$binary" ] || { echo "provision.sh: no binary at $binary (the Vagrantfile uploads dist/bin/vnet there)" >&2; exit 1; }
stage=/var/lib/vnet-provision
mkdir -p "$stage"
mv -f "$binary" "$stage/vnet"
chmod 0755 "$stage/vnet"
if ! answer=$(printf '{"cniVersion":"1.0.0"}' | env -i CNI_COMMAND=VERSION "$stage/vnet" 2>&1) || [[ $answer != *supportedVersions* ]]; then
  [[ $answer == *"snapshot data"* ]] && answer="it is a this-cpu build (a V8 startup snapshot) made on a CPU whose features differ from this node's; copy the portable one (npm run build, the default)"
  echo "provision.sh: $binary does not run on this node: $answer" >&2; exit 1
fi
if [ "$installer" = auto ]; then
  if "$stage/vnet" help install >/dev/null 2>&1; then installer=vnet; else installer=shell; fi
fi

# Routes this node was given last time: the ones not given now are removed.
mkdir -p /etc/vnet
old_routes=$(cat /etc/vnet/peer-routes 2>/dev/null || true)
: > /etc/vnet/peer-routes.new
for p in "${peers[@]}"; do echo "${p%%=*} via ${p#*=}" >> /etc/vnet/peer-routes.new; done
while read -r dst _ via; do
  [ -n "$dst" ] || continue
  grep -qx "$dst via .*" /etc/vnet/peer-routes.new && continue
  ip route del "$dst" via "$via" 2>/dev/null && echo "removed route $dst via $via (no longer a peer)" || true
done <<<"$old_routes"

if [ "$installer" = vnet ]; then
  args=(install --layout "$layout")
  if [ "$layout" = transparent ]; then args+=(--range "$range"); else args+=(--pod-cidr "$pod_cidr"); fi
  for c in "${no_masq[@]}"; do args+=(--no-masq "$c"); done
  for p in "${peers[@]}"; do args+=(--peer "$p"); done
  echo "provision.sh: vnet ${args[*]}"
  "$stage/vnet" "${args[@]}"
else
  echo "provision.sh: installing without \`vnet install\` (--installer shell)"
  mkdir -p /opt/cni/bin /etc/cni/net.d
  install -m 0755 "$stage/vnet" /opt/cni/bin/.vnet.new
  mv -f /opt/cni/bin/.vnet.new /opt/cni/bin/vnet
  ln -f /opt/cni/bin/vnet /opt/cni/bin/.vnet-ipam.new
  mv -f /opt/cni/bin/.vnet-ipam.new /opt/cni/bin/vnet-ipam
  echo "installed /opt/cni/bin/vnet and /opt/cni/bin/vnet-ipam"
  # Checked under its own name outside the conf dir (validate reads *.conflist as a list), then
  # renamed in: a runtime never reads half of it, nor a temporary file with a conflist's name.
  tmpd=$(mktemp -d)
  conflist > "$tmpd/10-vnet.conflist"
  /opt/cni/bin/vnet validate "$tmpd/10-vnet.conflist" >/dev/null
  install -m 0644 "$tmpd/10-vnet.conflist" /etc/cni/net.d/.10-vnet.conflist.tmp
  rm -rf "$tmpd"
  mv -f /etc/cni/net.d/.10-vnet.conflist.tmp /etc/cni/net.d/10-vnet.conflist
  echo "wrote /etc/cni/net.d/10-vnet.conflist (layout $layout)"
  while read -r dst _ via; do
    [ -n "$dst" ] || continue
    ip route replace "$dst" via "$via"
    echo "route $dst via $via"
  done < /etc/vnet/peer-routes.new
fi
rm -f "$stage/vnet"
mv -f /etc/vnet/peer-routes.new /etc/vnet/peer-routes
ln -sfn /opt/cni/bin/vnet /usr/local/bin/vnet
# Other conflists would win over ours (the runtime takes the first by name).
for f in /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist; do
  [ -e "$f" ] && [ "$f" != /etc/cni/net.d/10-vnet.conflist ] && echo "provision.sh: warning: $f is there too; runtimes take the first by name" >&2
done
[ "$(stat -c %i /opt/cni/bin/vnet)" = "$(stat -c %i /opt/cni/bin/vnet-ipam)" ] || { echo "provision.sh: vnet-ipam is not a hard link of vnet" >&2; exit 1; }

# The peer routes again on every boot (the private network comes up with systemd-networkd).
cat > /etc/systemd/system/vnet-peer-routes.service <<'EOF'
[Unit]
Description=vnet-cni: routes to the other nodes' pod ranges (/etc/vnet/peer-routes)
After=network.target systemd-networkd.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for i in $(seq 60); do ok=1; while read -r dst via gw; do [ -n "$dst" ] && { ip route replace "$dst" via "$gw" || ok=0; }; done < /etc/vnet/peer-routes; [ $ok = 1 ] && exit 0; sleep 1; done; exit 1'
[Install]
WantedBy=multi-user.target
EOF
if [ -d /run/systemd/system ]; then systemctl daemon-reload; systemctl enable -q vnet-peer-routes.service; fi

# --- containerd, configured for CNI as kind configures it ---
if [ "$containerd" != no ] && command -v containerd >/dev/null; then
  mkdir -p /etc/containerd
  cat > /etc/containerd/config.toml <<'EOF'
# Written by vnet-cni's vagrant/provision.sh, after kind's node image (images/base/files/etc/containerd/config.toml).
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.7"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = false

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  discard_unpacked_layers = true
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
  max_conf_num = 1
EOF
  # The conflist chains portmap, and the CRI plugin runs loopback: the reference plugins go
  # beside vnet in the one CNI bin dir, as on a kind node (Debian keeps them in /usr/lib/cni).
  for p in /usr/lib/cni/*; do
    [ -x "$p" ] || continue
    n=$(basename "$p")
    case "$n" in vnet|vnet-ipam) continue ;; esac
    [ -e "/opt/cni/bin/$n" ] || ln -s "$p" "/opt/cni/bin/$n"
  done
  systemctl restart containerd
  for _ in $(seq 60); do ctr version >/dev/null 2>&1 && break; sleep 1; done
  ctr version >/dev/null || { echo "provision.sh: containerd did not come back" >&2; exit 1; }
  echo "containerd $(containerd --version | awk '{print $3}') configured for CNI (/opt/cni/bin, /etc/cni/net.d)"
elif [ "$containerd" = yes ]; then
  echo "provision.sh: --containerd yes but no containerd" >&2; exit 1
fi
echo "provision.sh: node $index ready: $(/opt/cni/bin/vnet version | head -1), $(ls /etc/cni/net.d | tr '\n' ' ')"
