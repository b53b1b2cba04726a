#!/usr/bin/env bash
# The whole test suite, with its own set-up: Debian packages, npm ci, the native build, vitest.
# Run as root (the tests create network namespaces; they never touch the machine's own).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (sudo ./scripts/test.sh): the tests create network namespaces" >&2; exit 1; }
./scripts/deps.sh
npm run --silent build
npx tsc --noEmit
npx vitest run "$@"
