#!/bin/sh
# Runs INSIDE one kind node (copied there by up.sh, with the vnet executable): checks that the
# executable starts here, installs the plugin for this node with the node-side installer, and
# routes to every other node's pod CIDR via that node (kind's nodes share one docker or podman
# network and nothing else routes pod CIDRs between them). The routes are also written to a boot
# script, run by a systemd unit, so that a restarted node container gets them back.
#
#   install-node.sh VNET LAYOUT POD_CIDR CLUSTER_CIDR NODE_NET [PEER_CIDR=PEER_IP]...
#
# VNET: the copied executable; LAYOUT: kubenet (cbr0, a bridge) or overlay (transparent mode's
# routes, no bridge); POD_CIDR: this node's spec.podCIDR; CLUSTER_CIDR: the cluster's pod subnet;
# NODE_NET: the nodes' own network (kept unmasqueraded). Where it writes: CNI_BIN_DIR
# (/opt/cni/bin), CNI_CONF_DIR (/etc/cni/net.d), VNET_ETC_DIR (/etc/vnet: peer-routes.sh) and
# SYSTEMD_UNIT_DIR (/etc/systemd/system, only where systemd runs). POSIX sh: kind's node image has
# no bash guarantees beyond that.
set -eu
[ $# -ge 5 ] || { echo "usage: install-node.sh VNET LAYOUT POD_CIDR CLUSTER_CIDR NODE_NET [PEER_CIDR=PEER_IP]..." >&2; exit 2; }
vnet=$1 layout=$2 pod_cidr=$3 cluster_cidr=$4 node_net=$5
shift 5
case $layout in kubenet|overlay) ;; *) echo "install-node.sh: LAYOUT must be kubenet or overlay (got $layout)" >&2; exit 2 ;; esac
answer=$(printf '{"cniVersion":"1.0.0"}' | env -i CNI_COMMAND=VERSION "$vnet" 2>&1) || true
case $answer in
  *supportedVersions*) ;;
  *"snapshot data"*) echo "install-node.sh: $vnet is a this-cpu build (a V8 startup snapshot) made on a CPU unlike this node's: build the portable one (npm run build, the default)" >&2; exit 1 ;;
  *) echo "install-node.sh: $vnet does not run on this node: $answer" >&2; exit 1 ;;
esac
for peer in "$@"; do
  case $peer in *=*) ;; *) echo "install-node.sh: a peer is PEER_CIDR=PEER_IP (got $peer)" >&2; exit 2 ;; esac
  case $peer in *[!0-9a-fA-F.:/=]*) echo "install-node.sh: $peer is not PEER_CIDR=PEER_IP" >&2; exit 2 ;; esac
done
# The peers become --peer options, in place, without word splitting.
n=$#
for peer in "$@"; do set -- "$@" --peer "$peer"; done
shift "$n"
bin_dir=${CNI_BIN_DIR:-/opt/cni/bin} conf_dir=${CNI_CONF_DIR:-/etc/cni/net.d} etc_dir=${VNET_ETC_DIR:-/etc/vnet}
"$vnet" install --layout "$layout" --pod-cidr "$pod_cidr" --no-masq "$cluster_cidr" --no-masq "$node_net" \
  --bin-dir "$bin_dir" --conf-dir "$conf_dir" "$@"
"$bin_dir/vnet" validate "$conf_dir/10-vnet.conflist"

# kubenet: a Service whose backend sits on the same bridge needs the bridge's frames to pass
# iptables (kube-proxy's rules); the switch is per network namespace, the module the host's.
if [ "$layout" = kubenet ]; then
  if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
    echo "net.bridge.bridge-nf-call-iptables = 1 in this node"
  else
    echo "install-node.sh: warning: br_netfilter is not loaded on the host: a Service reached from a pod on its backend's node will not answer (modprobe br_netfilter on the host)" >&2
  fi
fi

# The routes again at every boot of this node (a restarted container starts with none).
mkdir -p "$etc_dir"
{
  echo '#!/bin/sh'
  echo '# Written by install-node.sh: routes to the other kind nodes pod CIDRs.'
  while [ $# -gt 0 ]; do
    [ "$1" = --peer ] && echo "ip route replace ${2%%=*} via ${2#*=}"
    shift 2
  done
} > "$etc_dir/peer-routes.sh.new"
mv -f "$etc_dir/peer-routes.sh.new" "$etc_dir/peer-routes.sh"
echo "wrote $etc_dir/peer-routes.sh"
if [ -d /run/systemd/system ]; then
  unit_dir=${SYSTEMD_UNIT_DIR:-/etc/systemd/system}
  cat > "$unit_dir/vnet-peer-routes.service" <<UNIT
[Unit]
Description=vnet-cni: routes to the other kind nodes' pod CIDRs
After=network-online.target
[Service]
Type=oneshot
ExecStart=/bin/sh $etc_dir/peer-routes.sh
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload && systemctl enable vnet-peer-routes.service >/dev/null 2>&1 && echo "enabled vnet-peer-routes.service (the routes after a restart)"
fi
