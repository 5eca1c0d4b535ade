#!/usr/bin/env bash
# Builds lsifs with sanitizers and runs its tests under them:
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer (leaks included), every
#         test of the suite, the mounting ones too (lsifs itself is built with
#         them), in ./build-asan
#   tsan  ThreadSanitizer, the tests of the concurrent parts: the read path,
#         the recorder and the co-access database, the link and the assembly
#         queue (the scheduler), read-time expansion, the metrics
#         endpoint, and the region service and its client, in ./build-tsan
#   ci    what CI runs: both, but ASan without the tests that mount (one of
#         them, AccessTest.LsictlReachesTheRunningDaemonOverTheSocket, saw
#         lsifs abort under ASan once in three full runs, not reproduced since;
#         the mount fixture now prints a dead daemon's log to find out why)
# Any report fails the run. Usage: scripts/sanitize.sh [asan|tsan|all|ci] (all).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
case "$mode" in asan | tsan | all | ci) ;; *)
  echo "usage: scripts/sanitize.sh [asan|tsan|all|ci]" >&2
  exit 2
  ;;
esac
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

build() { # build DIR FLAGS [TARGET...]: everything, or only the targets named
  local dir=$1 flags=$2
  shift 2
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="$flags -O1 -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" >/dev/null
  cmake --build "$dir" -j"$(nproc)" ${1:+--target "$@"}
}

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if [ "$mode" != tsan ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer: the whole suite"
  build build-asan "-fsanitize=address,undefined -fno-sanitize-recover=all"
  # abort_on_error: a report in a daemon a test started fails that test too.
  skip='^bench_'
  [ "$mode" = ci ] && skip='^bench_|^(MountTest|AccessTest|CatalogMountTest|CorruptionMountTest)\.|^e2e_(scheduler|service)$'
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1" \
    ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -E "$skip"
fi
if [ "$mode" != asan ]; then
  echo "== ThreadSanitizer: read path, recorder, link, scheduler, expansion, metrics, region"
  # -Wno-tsan: Boost.Asio (the metrics endpoint) uses atomic_thread_fence, which
  # GCC warns TSan does not model; the endpoint's own state is atomics and locks.
  # Only what it runs: the two test programs below.
  build build-tsan "-fsanitize=thread -Wno-tsan" core_tests region_tests
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitize/tsan.supp" \
    build-tsan/tests/core_tests \
    --gtest_filter='ImageTest.*:BlockCache.*:Recorder*:LinkTest.*:AssemblyQueue.*:ServiceTest.*:Control.*:MetricsServer.*:WaitHistogram.*:AccessDbTest.*:RegionFairShare.*'
  # The region service and its client: connection threads, fair shares,
  # revocation reloads, pooled connections (a network namespace: root).
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitize/tsan.supp" \
    build-tsan/tests/region_tests
fi
echo "sanitizers: clean"
