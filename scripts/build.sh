#!/usr/bin/env bash
# Configures and builds lsifs into ./build (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${LSIFS_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)"
