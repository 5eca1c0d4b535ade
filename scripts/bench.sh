#!/usr/bin/env bash
# Runs the benchmarks (see ../shared/BENCHMARKS.md) and writes their figures
# as JSON into build/bench/. Needs root (drops the page cache).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
mkdir -p build/bench
echo "== per-block encryption (AES-256-GCM, one core)"
build/tests/bench/crypto_bench --json build/bench/crypto.json
echo "== import of a real ext4 image, cold page cache"
tests/bench/import_bench.sh build/mount-tools/lsictl --json build/bench/import.json "$@"
echo "== B1: fully local LSI vs raw image, cold page cache"
tests/bench/read_bench.sh build/mount-tools --json build/bench/b1.json
echo "== B5: the same with access recording on vs off"
tests/bench/read_bench.sh build/mount-tools --b5 --json build/bench/b5.json
echo "== varied restore sessions of real programs on a Debian root filesystem (edge profile)"
tests/bench/session_bench.sh build/mount-tools --json build/bench/sessions.json
echo "== demand before prefetch: demand reads during a low assembly, restore after a session (edge)"
tests/bench/link_bench.sh build/mount-tools --json build/bench/link.json
