#!/usr/bin/env bash
# Installs what building and testing vnet-cni needs on a fresh Debian 12 machine with Node 20:
# iproute2 and nsenter for the datapath, ping for the tests, the reference CNI plugins to
# compare and interoperate with, and the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in iproute2 util-linux iputils-ping containernetworking-plugins podman runc busybox-static; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "deps: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
