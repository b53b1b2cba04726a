#!/usr/bin/env bash
# The demo is the lab's: a VNet, two AKS-like nodes and two pods on each in namespaces, transparent
# mode, the walkthrough, the reachability matrix, and everything removed. As root:
#   scripts/demo.sh [--dual-stack]      (the same as scripts/lab.sh demo)
exec "$(dirname "$0")/lab.sh" demo "$@"
