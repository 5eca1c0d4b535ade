#!/usr/bin/env bash
# Runs every benchmark of ../shared/BENCHMARKS.md and writes their figures
# as JSON, and their plots as SVG, into build/bench/; last, a table of every
# figure beside its goal (build/bench/summary.md). Needs root (mounts, loop
# devices, drops the page cache). Run it on a quiet machine: the figures are
# ratios measured side by side, but two cores shared with other work move
# them.
#
#   scripts/bench.sh            the full run (a few hours: B2 under three
#                               profiles and over a real network, B8 boots
#                               a VM dozens of times, again over the network)
#   scripts/bench.sh --quick    every benchmark in a reduced form (minutes):
#                               small trees and images, fewer sessions and
#                               boots, the edge profile only
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
case ${1:-} in
  --quick) quick=1 ;;
  "") ;;
  -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "bench.sh: unknown option $1 (--quick, or nothing for the full run)" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "bench.sh: run as root (mounts, loop devices, page cache)" >&2; exit 1; }
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
out=build/bench
[ $quick -eq 1 ] && out=build/bench/quick
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.svg "$out"/summary.md
bin=build/mount-tools tb=tests/bench
step() { printf '\n== %s\n' "$*"; }

if [ $quick -eq 1 ]; then
  step "per-block encryption (AES-256-GCM, one core)"
  build/tests/bench/crypto_bench --seconds 0.2 --json "$out/crypto.json"
  step "import of a real ext4 image"
  $tb/import_bench.sh $bin/lsictl --smoke --json "$out/import.json"
  step "B1 and B5 on a small tree"
  $tb/read_bench.sh $bin --smoke --json "$out/b1.json"
  $tb/read_bench.sh $bin --smoke --b5 --json "$out/b5.json"
  step "B2, B3, B4: varied sessions on a Debian root filesystem, 3 held out (edge)"
  $tb/session_bench.sh $bin --quick --profile edge --json "$out/b3-rootfs-edge.json" \
    --svg "$out/b3-rootfs-edge.svg" --b4 build/tests/bench/learning_curve \
    --b4-json "$out/b4-rootfs.json"
  python3 $tb/b2_report.py "$out/b2.json" "$out/b2.svg" "$out/b3-rootfs-edge.json"
  step "B6: assembly"
  python3 $tb/assembly_bench.py $bin/lsictl --quick --runs 1 --json "$out/b6.json"
  step "region: lsid's re-encrypting throughput and the latency TLS adds"
  build/tests/bench/region_bench --mib 64 --seconds 2 --json "$out/region.json"
  step "B7: scale"
  $tb/scale_bench.sh $bin --quick --catalog-fill build/tests/bench/catalog_fill \
    --json "$out/b7.json" --svg "$out/b7.svg"
  step "B8: a VM boots from an LSI (a small root filesystem)"
  $tb/boot_bench.sh $bin --smoke --json "$out/b8.json"
  step "demand before prefetch"
  $tb/link_bench.sh $bin --smoke --json "$out/link.json"
else
  step "per-block encryption (AES-256-GCM, one core)"
  build/tests/bench/crypto_bench --json "$out/crypto.json"
  step "import of a real ext4 image, cold page cache"
  $tb/import_bench.sh $bin/lsictl --json "$out/import.json"
  step "B1: fully local LSI vs raw image, cold page cache"
  $tb/read_bench.sh $bin --json "$out/b1.json"
  step "B5: the same with access recording on vs off"
  $tb/read_bench.sh $bin --b5 --json "$out/b5.json"
  # B2 is the session benchmark under each profile; B3 and B4 are read from
  # its edge run (BENCHMARKS.md's profile for them).
  for p in metro edge constrained; do
    step "B2, B3, B4: varied sessions of real programs on a Debian root filesystem ($p)"
    held_out=5
    b4=()
    if [ $p = edge ]; then
      held_out=8
      b4=(--b4 build/tests/bench/learning_curve --b4-json "$out/b4-rootfs.json")
    fi
    $tb/session_bench.sh $bin --profile $p --held-out $held_out \
      --json "$out/b3-rootfs-$p.json" --svg "$out/b3-rootfs-$p.svg" "${b4[@]}"
  done
  step "B2 over a real network: lsid and a site in two namespaces, tc-shaped (edge)"
  $tb/session_bench.sh $bin --profile edge --held-out 5 --network \
    --json "$out/b3-rootfs-edge-network.json" --svg "$out/b3-rootfs-edge-network.svg"
  python3 $tb/b2_report.py "$out/b2.json" "$out/b2.svg" \
    "$out"/b3-rootfs-{metro,edge,constrained}.json "$out/b3-rootfs-edge-network.json"
  step "B3 and B4 on a large real tree: this machine's /usr/share (edge)"
  $tb/session_bench.sh $bin --tree usr-share --json "$out/b3-usr-share-edge.json" \
    --svg "$out/b3-usr-share-edge.svg" --b4 build/tests/bench/learning_curve \
    --b4-json "$out/b4-usr-share.json"
  step "B6: assembly, unthrottled and under each profile"
  python3 $tb/assembly_bench.py $bin/lsictl --json "$out/b6.json"
  step "region: lsid's re-encrypting throughput and the latency TLS adds"
  build/tests/bench/region_bench --mib 256 --seconds 10 --json "$out/region.json"
  step "B7: scale (virtual size, present blocks, a catalog of 10^4 LSIs)"
  $tb/scale_bench.sh $bin --catalog-fill build/tests/bench/catalog_fill \
    --json "$out/b7.json" --svg "$out/b7.svg"
  step "B8: a VM boots from an LSI (edge and constrained)"
  $tb/boot_bench.sh $bin --json "$out/b8.json" --svg "$out/b8.svg"
  step "B8 over a real network (edge and constrained)"
  $tb/boot_bench.sh $bin --network --json "$out/b8-network.json"
  step "demand before prefetch: demand reads during a low assembly, restore after a session"
  $tb/link_bench.sh $bin --json "$out/link.json"
  step "hardening: the full corruption and crash matrices, five minutes of verified load"
  LSIFS_MATRIX=full build/tests/core_tests --gtest_filter='CorruptionMatrix.*'
  LSIFS_MATRIX=full tests/integration/crash_test.sh $bin/lsictl
  python3 $tb/load_test.py $bin --seconds 300 --json "$out/load.json"
fi
step "every figure beside its goal ($out/summary.md)"
python3 $tb/summary.py "$out"
