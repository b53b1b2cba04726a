#!/usr/bin/env bash
# The whole test suite, with its own set-up: Debian packages, Node >= 20, npm ci, the native
# build, vitest: both sets of vitest.config.ts, the fast one (`npm test`, no root, no build) and
# the rest. Run as root (the tests create network namespaces; they never touch the machine's
# own). Arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root: the tests create network namespaces" >&2; exit 1; }
# The suite tests the build users get: the portable one (scripts/build.mjs), whatever VNET_SEA says.
export VNET_SEA=portable
. ./scripts/deps.sh --for test --build # and leaves Node >= 20 first on PATH for npx and node below
npx tsc --noEmit
mkdir -p .tmp
rc=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest.json "$@" || rc=$?
# One plain closing line, the same whatever the runner: "N passed, N failed[, N skipped]".
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' || true
exit "$rc"
