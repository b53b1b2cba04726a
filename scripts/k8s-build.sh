#!/usr/bin/env bash
# Real Kubernetes v1.20.2 binaries, built offline from Debian 12's `kubernetes` SOURCE package,
# and Debian's etcd 3.4, for tests that need a control plane or a kubelet. Run as root on Debian 12:
#
#   scripts/k8s-build.sh [CACHE_DIR]     (CACHE_DIR defaults to .tmp/k8s)
#
# Prints the directory holding the binaries as its last line of stdout (progress goes to stderr):
# kubelet, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubectl (all static,
# CGO_ENABLED=0, like Debian's own build), etcd and etcdctl, and VERSIONS (what went into them).
#
# Phases (each prints a "timing:" line):
# 1. fetch: the source package (1.20.5+really1.20.2-1.1+deb12u1: v1.20.2 with its vendor/ tree)
#    with a private apt configuration (its own sources list with deb and deb-src lines, its own
#    lists and cache, all under the build directory): the machine's apt sources, lists and caches
#    are not touched. The same configuration fetches the etcd-server and etcd-client .debs with
#    `apt-get download`; they are only unpacked (dpkg-deb -x), never installed, so no service starts.
# 2. unpack: the orig tarball into a GOPATH (GOPATH/src/k8s.io/kubernetes: the build runs in
#    GOPATH mode, GO111MODULE=off, as module mode fails on this tree). Debian's patches (kubectl
#    printing fixes) are not needed to build and are not applied. The vendored
#    github.com/modern-go/reflect2 1.0.1 crashes on Go >= 1.18: it is replaced by Debian's
#    golang-github-modern-go-reflect2-dev (1.0.2).
# 3. openapi: the tarball lacks pkg/generated/openapi/zz_generated.openapi.go; the vendored
#    openapi-gen generates it with the inputs `make gen_openapi` would give it
#    (build/root/Makefile.generated_files), run directly (no rsync, no hack/ wrappers).
# 4. one phase per binary: `go build -trimpath` with Debian's Go 1.19 and the version ldflags of
#    hack/lib/version.sh, so `kubectl version --client` reports v1.20.2.
#
# Cache: CACHE_DIR/bin-<hash>, the hash being that of this file, the source package's version, the
# Go version and reflect2's package version; a second run with the same hash only prints the path.
# The build happens in CACHE_DIR/build-<hash>.<pid> and is renamed into place only when complete,
# so a failed build leaves no partial output. The fetched files and the unpacked source tree are
# deleted afterwards (a rebuild re-fetches ~34 MB in seconds); the Go build cache (CACHE_DIR/gocache,
# ~1.5 GB) is kept, so a rebuild after a recipe change only recompiles what changed. Older bin-*
# directories are removed. Runs are serialized by a lock on CACHE_DIR/.lock.
#
# Nothing outside CACHE_DIR is written, besides `apt-get install` of golang-go and
# golang-github-modern-go-reflect2-dev when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the result's path goes to stdout (fd 3); everything else, tools' chatter included, to stderr.
exec 3>&1 1>&2
SELF=$PWD/scripts/k8s-build.sh

K8S_VERSION=v1.20.2
K8S_SRC_VERSION=1.20.5+really1.20.2-1.1+deb12u1
BINARIES=(kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl)
GO=/usr/lib/go/bin/go # Debian's golang-go (1.19 on Debian 12)
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

die() { echo "k8s-build.sh: $*" >&2; exit 1; }
say() { echo "k8s-build: $*" >&2; }
phase_start() { PHASE=$1; PHASE_T0=$(date +%s.%N); }
phase_end() { say "timing: $PHASE $(awk -v a="$PHASE_T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"; }

[ "$(id -u)" = 0 ] || die "run as root"
[ $# -le 1 ] || { sed -n '2,5p' "$SELF" >&2; exit 2; }
cache=${1:-.tmp/k8s}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
missing=()
for p in golang-go golang-github-modern-go-reflect2-dev; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  apt-get update -qq ||
    die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" ||
    die "apt-get install ${missing[*]} failed"
fi
[ -x "$GO" ] || die "$GO is missing (Debian's golang-go)"
[ -f "$REFLECT2_SRC/reflect2.go" ] || die "$REFLECT2_SRC is missing (golang-github-modern-go-reflect2-dev)"
go_version=$("$GO" version) || die "$GO does not run"
reflect2_version=$(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)

hash=$({ cat "$SELF"; echo "$K8S_SRC_VERSION"; echo "$go_version"; echo "reflect2 $reflect2_version"; } | sha256sum | cut -c1-16)
out=$cache/bin-$hash
if [ -f "$out/VERSIONS" ]; then
  echo "$out" >&3
  exit 0
fi

exec 9>"$cache/.lock"
if ! flock -n 9; then
  say "waiting for another k8s-build.sh on $cache"
  flock 9
fi
if [ -f "$out/VERSIONS" ]; then # built by the run we waited for
  echo "$out" >&3
  exit 0
fi
rm -rf "$cache"/build-* # an interrupted build's leftovers (the lock excludes a running one)
work=$cache/build-$hash.$$
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/parts" "$work/dl" "$work/bin" "$work/tools"
T0=$(date +%s)
say "building Kubernetes $K8S_VERSION into $out (Go cache $cache/gocache)"

# --- fetch
phase_start fetch
# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
key=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$work/apt/sources.list" <<EOF
deb [signed-by=$key] http://deb.debian.org/debian $codename main
deb [signed-by=$key] http://deb.debian.org/debian $codename-updates main
deb [signed-by=$key] http://deb.debian.org/debian-security $codename-security main
deb-src [signed-by=$key] http://deb.debian.org/debian $codename main
deb-src [signed-by=$key] http://deb.debian.org/debian $codename-updates main
deb-src [signed-by=$key] http://deb.debian.org/debian-security $codename-security main
EOF
apt=(apt-get -q
  -o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=$work/apt/parts"
  -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
  -o APT::Sandbox::User=root -o APT::Get::List-Cleanup=0)
say "fetching the source of kubernetes $K8S_SRC_VERSION and etcd's .debs (private apt lists under $work/apt)"
"${apt[@]}" update >&2 ||
  die "apt-get update of the private lists failed (is deb.debian.org reachable?)"
(cd "$work/dl" && "${apt[@]}" source --download-only "kubernetes=$K8S_SRC_VERSION" >&2) ||
  die "apt-get source kubernetes=$K8S_SRC_VERSION failed"
(cd "$work/dl" && "${apt[@]}" download etcd-server etcd-client >&2) ||
  die "apt-get download etcd-server etcd-client failed"
orig=$(find "$work/dl" -maxdepth 1 -name 'kubernetes_*.orig.tar.*' | head -n 1)
[ -n "$orig" ] || die "no orig tarball in what apt-get source fetched"
etcd_version=$(dpkg-deb -f "$(find "$work/dl" -maxdepth 1 -name 'etcd-server_*.deb' | head -n 1)" Version) ||
  die "no etcd-server .deb in what apt-get download fetched"
case $etcd_version in 3.4.*) ;; *) die "etcd-server is $etcd_version, not 3.4 (Kubernetes 1.20's etcd)" ;; esac
phase_end

# --- unpack
phase_start unpack
export GOPATH=$work/gopath
src=$GOPATH/src/k8s.io/kubernetes
mkdir -p "$src"
tar -xf "$orig" -C "$src" --strip-components=1 --no-same-owner
[ -f "$src/cmd/kubelet/kubelet.go" ] || die "the orig tarball has no cmd/kubelet/kubelet.go"
grep -q "KUBE_GIT_VERSION" "$src/hack/lib/version.sh" || die "the source has no hack/lib/version.sh"
rm -rf "$src/vendor/github.com/modern-go/reflect2"
cp -rL "$REFLECT2_SRC" "$src/vendor/github.com/modern-go/reflect2"
mkdir -p "$work/etcd"
for deb in "$work"/dl/etcd-server_*.deb "$work"/dl/etcd-client_*.deb; do dpkg-deb -x "$deb" "$work/etcd"; done
for b in etcd etcdctl; do
  [ -x "$work/etcd/usr/bin/$b" ] || die "no usr/bin/$b in Debian's etcd .debs"
  cp "$work/etcd/usr/bin/$b" "$work/bin/$b"
done
phase_end

# Go in GOPATH mode, isolated from any user or machine Go configuration.
export GO111MODULE=off GOFLAGS="" GOENV=off GOPROXY=off GOCACHE=$cache/gocache CGO_ENABLED=0 GOTOOLCHAIN=local
unset GOROOT GOBIN
cd "$src"

# --- openapi (what `make gen_openapi` does for pkg/generated/openapi, KUBE_OPENAPI_* in
# build/root/Makefile.generated_files): the inputs are the directories (staging/src/k8s.io/X named
# vendor/k8s.io/X, code-generator's and sample-apiserver's left out) holding a Go file with a
# `// +k8s:` comment-tag that asks for openapi-gen.
phase_start openapi
"$GO" build -o "$work/tools/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen ||
  die "building openapi-gen failed"
find -H . -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) -type f -name '*.go' -print |
  sed 's|^\./staging/src|vendor|; s|^\./||' |
  grep -v -E '^vendor/k8s\.io/(code-generator|sample-apiserver)/' |
  LC_ALL=C sort >"$work/go-files"
# the files among NUL-separated ones on stdin that match $1 (xargs says 123 when a grep matched nothing)
files_with() { xargs -0 grep -l --color=never -e "$1" || [ $? = 123 ]; }
tr '\n' '\0' <"$work/go-files" | files_with '^// *+k8s:' | tr '\n' '\0' |
  files_with '+k8s:openapi-gen=' | xargs -n1 dirname | LC_ALL=C sort -u >"$work/openapi-dirs"
[ -s "$work/openapi-dirs" ] || die "no directory asks for openapi-gen"
"$work/tools/openapi-gen" --logtostderr --v 0 \
  -i "$(sed 's|^|k8s.io/kubernetes/|' "$work/openapi-dirs" | paste -sd,)" \
  -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
  -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
  -r "$work/openapi-violations" >&2 ||
  die "openapi-gen failed"
[ -s pkg/generated/openapi/zz_generated.openapi.go ] || die "openapi-gen wrote no pkg/generated/openapi/zz_generated.openapi.go"
if ! diff -q <(LC_ALL=C sort "$work/openapi-violations") <(LC_ALL=C sort api/api-rules/violation_exceptions.list) >/dev/null; then
  say "note: openapi-gen's API rule violations differ from api/api-rules/violation_exceptions.list (not an error here)"
fi
say "openapi: $(wc -l <"$work/openapi-dirs") input packages"
phase_end

# --- binaries (hack/lib/golang.sh's flags: tags selinux,notest, -s -w, version.sh's ldflags; in
# GOPATH mode the version packages are k8s.io/kubernetes/vendor/k8s.io/...)
base=staging/src/k8s.io/component-base/version/base.go
git_commit=$(sed -n 's/^[[:space:]]*gitCommit[[:space:]]*=[[:space:]]*"\([0-9a-f]\{40\}\)".*/\1/p' "$base")
[ -n "$git_commit" ] || die "no gitCommit in $base"
build_date=$(date -u -r "$base" +%Y-%m-%dT%H:%M:%SZ) # the tarball's date, so builds are reproducible
major=${K8S_VERSION#v}; major=${major%%.*}
minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
ldflags="-s -w -buildid="
for pkg in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitCommit=$git_commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
for b in "${BINARIES[@]}"; do
  phase_start "$b"
  say "go build $b"
  "$GO" build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$work/bin/$b" "k8s.io/kubernetes/cmd/$b" ||
    die "building $b failed"
  phase_end
done

client=$("$work/bin/kubectl" version --client --short 2>&1) || die "the kubectl built does not run: $client"
[[ "$client" == *"$K8S_VERSION"* ]] || die "the kubectl built does not report $K8S_VERSION: $client"
{
  echo "kubernetes $K8S_VERSION (commit $git_commit) from Debian's source package kubernetes $K8S_SRC_VERSION"
  echo "built with $go_version, GOPATH mode, CGO_ENABLED=0, tags selinux,notest, -trimpath"
  echo "vendor/github.com/modern-go/reflect2 from golang-github-modern-go-reflect2-dev $reflect2_version"
  echo "etcd, etcdctl from Debian's etcd-server, etcd-client $etcd_version"
  echo "recipe $hash, built $(date -u +%FT%TZ)"
} >"$work/bin/VERSIONS"
cd "$cache"
mv "$work/bin" "$out"
# Older recipes' binaries are of no use any more.
for old in "$cache"/bin-*; do [ "$old" = "$out" ] || { rm -rf "$old"; say "removed the outdated $old"; }; done
say "built $out ($(du -sm "$out" | cut -f1) MiB) in $(( $(date +%s) - T0 ))s"
echo "$out" >&3
