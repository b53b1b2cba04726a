#!/usr/bin/env bash
# Deletes the kind cluster up.sh made.   scripts/kind/down.sh [--name vnet]
set -euo pipefail
name=vnet
[ "${1:-}" = --name ] && name=$2
command -v docker >/dev/null || export KIND_EXPERIMENTAL_PROVIDER=podman
kind delete cluster --name "$name"
