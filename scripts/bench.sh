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
echo "== B3 and B4: varied sessions of real programs on a Debian root filesystem (edge profile)"
tests/bench/session_bench.sh build/mount-tools --json build/bench/b3-rootfs.json \
  --svg build/bench/b3-rootfs.svg --b4 build/tests/bench/learning_curve \
  --b4-json build/bench/b4-rootfs.json
echo "== B3 and B4 on a large real tree: this machine's /usr/share (edge profile)"
tests/bench/session_bench.sh build/mount-tools --tree usr-share --json build/bench/b3-usr-share.json \
  --svg build/bench/b3-usr-share.svg --b4 build/tests/bench/learning_curve \
  --b4-json build/bench/b4-usr-share.json
echo "== demand before prefetch: demand reads during a low assembly, restore after a session (edge)"
tests/bench/link_bench.sh build/mount-tools --json build/bench/link.json
echo "== hardening: the full corruption and crash matrices, five minutes of verified load"
LSIFS_MATRIX=full build/tests/core_tests --gtest_filter='CorruptionMatrix.*'
LSIFS_MATRIX=full tests/integration/crash_test.sh build/mount-tools/lsictl
python3 tests/bench/load_test.py build/mount-tools --seconds 300 --json build/bench/load.json
