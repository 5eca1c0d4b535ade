#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, with AddressSanitizer and
# UndefinedBehaviorSanitizer) into ./build-fuzz and runs each for SECONDS
# (default 10) from its seed corpus in tests/fuzz/corpus/TARGET/, which is
# copied (the repository's corpus is not changed). A crash fails the run and
# keeps its input in build-fuzz/artifacts/: add it to the target's corpus and
# a regression test. Prints the inputs run per target.
#   usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(manifest layer snapshot_map records keyfile values request region_request)
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang (apt-get install clang)" >&2; exit 1; }
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -O1 -g"
CC=clang CXX=clang++ cmake -S . -B build-fuzz "${generator[@]}" -DLSIFS_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")
mkdir -p build-fuzz/artifacts
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for t in "${targets[@]}"; do
  work=$(mktemp -d /tmp/lsifs-corpus.XXXXXX)
  cp -r "tests/fuzz/corpus/$t/." "$work/"
  log=build-fuzz/fuzz_$t.log
  if ! "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=131072 \
      -artifact_prefix="build-fuzz/artifacts/$t-" -print_final_stats=1 "$work" >"$log" 2>&1; then
    tail -40 "$log" >&2
    rm -rf "$work"
    echo "fuzz.sh: fuzz_$t found a crash; input kept in build-fuzz/artifacts/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz_$t: ${runs:-?} inputs in ${seconds} s, corpus $(ls "$work" | wc -l) files"
  rm -rf "$work"
done
