#!/usr/bin/env bash
# The test command: set up (packages, build), then every busted spec and C test under ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
build="${MOONFLOW_BUILD:-$root/build}"
cd "$build"
ctest --output-on-failure -j"${MOONFLOW_TEST_JOBS:-2}" "$@"
