#!/bin/sh
# Runs INSIDE one kind node (copied there by up.sh, with the vnet executable): installs the
# plugin for this node with the node-side installer, kubenet layout (cbr0, masquerade for what
# leaves the cluster), and routes to every other node's pod CIDR via that node (kind's nodes share
# one docker network and nothing else routes pod CIDRs between them).
#
#   install-node.sh VNET POD_CIDR CLUSTER_CIDR NODE_NET [PEER_CIDR=PEER_IP]...
#
# VNET: the copied executable; POD_CIDR: this node's spec.podCIDR; CLUSTER_CIDR: the cluster's pod
# subnet; NODE_NET: the nodes' own network (kept unmasqueraded). POSIX sh: kind's node image has no
# bash guarantees beyond that.
set -eu
[ $# -ge 4 ] || { echo "usage: install-node.sh VNET POD_CIDR CLUSTER_CIDR NODE_NET [PEER_CIDR=PEER_IP]..." >&2; exit 2; }
vnet=$1 pod_cidr=$2 cluster_cidr=$3 node_net=$4
shift 4
# The peers become --peer options, in place, without word splitting.
n=$#
for peer in "$@"; do set -- "$@" --peer "$peer"; done
shift "$n"
"$vnet" install --layout kubenet --pod-cidr "$pod_cidr" --no-masq "$cluster_cidr" --no-masq "$node_net" \
  --bin-dir "${CNI_BIN_DIR:-/opt/cni/bin}" --conf-dir "${CNI_CONF_DIR:-/etc/cni/net.d}" "$@"
"${CNI_BIN_DIR:-/opt/cni/bin}/vnet" validate "${CNI_CONF_DIR:-/etc/cni/net.d}/10-vnet.conflist"
