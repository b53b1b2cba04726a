#!/usr/bin/env bash
# What test/containerd.test.ts needs besides the npm packages, as root on Debian 12:
#
#   scripts/cri-setup.sh [CACHE_DIR]     (CACHE_DIR defaults to .tmp/cri)
#
# 1. containerd (Debian's 1.6, which includes the CRI plugin): installed with apt-get when missing.
# 2. The CRI API the installed containerd serves, runtime.v1's api.proto, from the same version of
#    Debian's containerd SOURCE package (vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto), with
#    its gogoproto import and options dropped (they only steer Go code generation, and
#    @grpc/proto-loader cannot resolve the import). Fetched with a private apt configuration
#    (its own sources list with deb-src lines, its own lists and cache, all under CACHE_DIR): the
#    machine's apt sources, lists and caches are not touched. Cached as
#    CACHE_DIR/api-<containerd version>.proto; a second run only prints the path.
#
# Prints the proto's path as its last line of stdout. Nothing is started; no file outside
# CACHE_DIR is written (besides apt-get install, when containerd is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "cri-setup.sh: run as root" >&2; exit 1; }
cache=${1:-.tmp/cri}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null || ! command -v containerd-shim-runc-v2 >/dev/null; then
  echo "cri-setup: apt-get install containerd" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd >&2
  hash -r
fi
version=$(dpkg-query -W -f='${Version}' containerd 2>/dev/null) ||
  { echo "cri-setup.sh: containerd is on PATH but not Debian's package: the CRI proto is taken from Debian's source package of the same version" >&2; exit 1; }
proto=$cache/api-${version//[^A-Za-z0-9.+~-]/_}.proto
if [ -s "$proto" ]; then
  echo "$proto"
  exit 0
fi

# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/src"
cat >"$work/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $codename-security main
EOF
apt=(apt-get -q
  -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o APT::Sandbox::User=root -o APT::Get::List-Cleanup=0)
echo "cri-setup: fetching the source of containerd $version (private apt lists under $work)" >&2
"${apt[@]}" update >&2 ||
  { echo "cri-setup.sh: apt-get update of the deb-src lists failed (is deb.debian.org reachable?)" >&2; exit 1; }
(cd "$work/src" && "${apt[@]}" source --download-only "containerd=$version" >&2) ||
  { echo "cri-setup.sh: apt-get source containerd=$version failed" >&2; exit 1; }
orig=$(find "$work/src" -maxdepth 1 -name 'containerd_*.orig.tar.*' | head -n 1)
[ -n "$orig" ] || { echo "cri-setup.sh: no orig tarball in what apt-get source fetched" >&2; exit 1; }
tar -xf "$orig" -C "$work/src" --wildcards --no-same-owner '*/vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto'
found=$(find "$work/src" -path '*/vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto' | head -n 1)
[ -n "$found" ] || { echo "cri-setup.sh: the source has no vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto" >&2; exit 1; }
grep -v 'gogoproto' "$found" >"$work/api.proto"
grep -q '^service RuntimeService' "$work/api.proto" || { echo "cri-setup.sh: $found has no RuntimeService" >&2; exit 1; }
mv "$work/api.proto" "$proto"
echo "$proto"
