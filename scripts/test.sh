#!/usr/bin/env bash
# Installs what lsifs needs, builds it, and runs every test (unit tests and
# the end-to-end tests that really mount, which need root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
