#!/usr/bin/env bash
# Installs the plugin: dist/bin/vnet into the CNI bin dir as vnet and vnet-ipam (a hard link, so
# the main plugin runs its IPAM in-process), the CLI as a link on PATH, and optionally a conflist
# into the CNI conf dir (checked with `vnet validate` first), with the other plugins it names
# (portmap, host-local, …) linked into the CNI bin dir from --plugins-dir when missing there: a
# runtime looks only in its bin dir, and Debian keeps the reference plugins in /usr/lib/cni. The
# executable is run on this node before anything is written: one that cannot start here (a
# this-cpu build from a machine with another CPU) is refused, and nothing changes. A type found
# in neither directory is named in a warning: this reads every "type" of the file (no JSON parser
# here), and a plugin's own field may be called so (calico's "policy": {"type": "k8s"}).
#   scripts/install.sh [--binary dist/bin/vnet] [--prefix /opt/cni/bin] [--bin-link /usr/local/bin] [--conf conf/10-azure-transparent.conflist] [--conf-dir /etc/cni/net.d] [--plugins-dir /usr/lib/cni]
# Needs on the node: ip (iproute2), nsenter (util-linux), nft (nftables, for ipMasq), libstdc++6.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=dist/bin/vnet
prefix=/opt/cni/bin
binlink=/usr/local/bin
conf=""
confdir=/etc/cni/net.d
pluginsdir=/usr/lib/cni
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a file}"; shift 2 ;;
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --bin-link) binlink="${2?--bin-link needs a directory (or '' for none)}"; shift 2 ;;
    --conf) conf="${2:?--conf needs a file}"; shift 2 ;;
    --conf-dir) confdir="${2:?--conf-dir needs a directory}"; shift 2 ;;
    --plugins-dir) pluginsdir="${2:?--plugins-dir needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -f "$binary" ] || { echo "install.sh: $binary is missing: run ./scripts/deps.sh --build first" >&2; exit 1; }
# Run as a runtime would; node prints "Invalid snapshot data" for a snapshot made on another CPU.
if ! answer=$(printf '{"cniVersion":"1.0.0"}' | env -i CNI_COMMAND=VERSION "$binary" 2>&1) || [[ $answer != *supportedVersions* ]]; then
  [[ $answer == *"snapshot data"* ]] && answer="it is a this-cpu build (a V8 startup snapshot) made on a CPU whose features differ from this node's; build the portable one (npm run build, the default) and install that"
  echo "install.sh: $binary does not run on this node: $answer; nothing installed" >&2; exit 1
fi
[ -z "$conf" ] || [ -f "$conf" ] || { echo "install.sh: no such conf file: $conf" >&2; exit 1; }
[ -z "$conf" ] || "$binary" validate "$conf" || { echo "install.sh: $conf is not valid (see above); nothing installed" >&2; exit 1; }
# The plugins the conflist names besides vnet (validated above: plain JSON), each needed in the bin dir.
# Every "type" value is read, a plugin's own field so named too: only what --plugins-dir holds is linked.
links=()
if [ -n "$conf" ]; then
  while read -r type; do
    case "$type" in vnet|vnet-ipam) continue ;; esac
    [[ $type =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "install.sh: $conf names a plugin type $type that is not a file name; nothing installed" >&2; exit 1; }
    [ -e "$prefix/$type" ] || [ -L "$prefix/$type" ] && continue
    if [ -x "$pluginsdir/$type" ]; then links+=("$type"); continue; fi
    echo "install.sh: warning: $conf names type $type, which is neither in $prefix nor in $pluginsdir: if it is a plugin the runtime must run, install it there (apt-get install containernetworking-plugins, or --plugins-dir where it is)" >&2
  done < <(grep -o '"type"[[:space:]]*:[[:space:]]*"[^"]*"' "$conf" | sed 's/.*"\([^"]*\)"$/\1/' | sort -u)
fi
for tool in ip nsenter; do
  command -v "$tool" >/dev/null || echo "install.sh: warning: $tool is not on PATH; the plugin needs it (apt-get install iproute2 util-linux)" >&2
done

mkdir -p "$prefix"
# Copy under a temporary name, then rename: a runtime may be executing the old binary right now.
install -m 0755 "$binary" "$prefix/.vnet.new"
mv -f "$prefix/.vnet.new" "$prefix/vnet"
ln -f "$prefix/vnet" "$prefix/.vnet-ipam.new"
mv -f "$prefix/.vnet-ipam.new" "$prefix/vnet-ipam"
echo "installed $prefix/vnet and $prefix/vnet-ipam"
for type in "${links[@]}"; do
  ln -s "$pluginsdir/$type" "$prefix/$type"
  echo "linked $prefix/$type -> $pluginsdir/$type (the conflist chains it; a runtime looks only in $prefix)"
done
if [ -n "$binlink" ]; then
  mkdir -p "$binlink"
  ln -sfn "$prefix/vnet" "$binlink/vnet"
  echo "linked $binlink/vnet -> $prefix/vnet (vnet state, vnet explain, vnet validate)"
fi

if [ -n "$conf" ]; then
  mkdir -p "$confdir"
  install -m 0644 "$conf" "$confdir/$(basename "$conf")"
  echo "installed $confdir/$(basename "$conf")"
fi
