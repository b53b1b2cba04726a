#!/usr/bin/env bash
# Runs inside the VM as root. Debian 12 ships Node 18 and the build needs Node 20 (single
# executable applications), so Node 20 comes from the npm registry's `node` package.
# Not run in this project's CI (no VMs there); scripts/deps.sh, build and install.sh, which it
# calls, are.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nodejs npm iproute2 util-linux iputils-ping containernetworking-plugins rsync >/dev/null
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  npm install -g node@20 >/dev/null
  hash -r
fi
cd /vnet-cni
./scripts/deps.sh
npm run build
./scripts/install.sh --conf conf/10-azure-transparent.conflist
echo "vnet-cni installed: /opt/cni/bin/vnet, /etc/cni/net.d/10-azure-transparent.conflist"
echo "try (as root): /vnet-cni/scripts/lab.sh demo   or   vnet help"
ln -sf /opt/cni/bin/vnet /usr/local/bin/vnet
