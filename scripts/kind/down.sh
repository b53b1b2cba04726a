#!/usr/bin/env bash
# Deletes the kind cluster up.sh made (its node containers; the engine's `kind` network stays, as
# kind leaves it).   scripts/kind/down.sh [--name vnet]
set -euo pipefail
name=vnet
[ "${1:-}" = --name ] && name=${2:?--name needs a cluster name}
command -v docker >/dev/null || export KIND_EXPERIMENTAL_PROVIDER=podman
kind delete cluster --name "$name"
