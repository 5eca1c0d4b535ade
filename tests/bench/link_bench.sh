#!/usr/bin/env bash
# Demand before prefetch (issue 9), measured on a real mount of a Debian
# root filesystem under a WAN profile:
#   1. the wait of demand reads (cold 4 KiB reads of distinct blocks of the
#      image, one at a time) with the link idle, and while a full-volume
#      `low` assembly runs on the same link: median and p99;
#   2. the restore time of the volume right after a session ends, when the
#      daemon pre-assembled it (preassemble=auto), against a restore that
#      has to assemble (preassemble=off).
#
#   link_bench.sh BIN_DIR [--profile edge] [--reads 200] [--json FILE] [--smoke]
#
# The root filesystem image is the one session_bench.sh builds and caches.
set -euo pipefail
bin=$1
shift
profile=edge reads=200 json="" smoke=0
while [ $# -gt 0 ]; do
  case $1 in
    --profile) profile=$2; shift ;;
    --reads) reads=$2; shift ;;
    --json) json=$2; shift ;;
    --smoke) smoke=1 reads=20 ;;
    *) echo "link_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
source "$(dirname "$0")/profiles.sh"
if [ "$profile" = none ] || ! wan=$(wan_options "$profile"); then
  echo "link_bench.sh: profile is metro, edge or constrained" >&2
  exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "link_bench.sh: needs root (mounts)" >&2; exit 1; }
cache=${LSIFS_BENCH_CACHE:-/var/cache/lsifs-bench}
work=$(mktemp -d "${TMPDIR:-/tmp}/lsifs-link.XXXXXX")
mnt=$work/mnt
mkdir -p "$mnt"
pid=""
cleanup() {
  set +e
  mountpoint -q "$mnt" && fusermount3 -u "$mnt"
  [ -n "$pid" ] && wait "$pid"
  rm -rf "$work"
}
trap cleanup EXIT

if [ $smoke -eq 1 ]; then
  mkdir -p "$work/tree"
  cp -r /usr/share/common-licenses /etc/apt "$work/tree/"
  head -c 20000000 /dev/urandom >"$work/tree/random.bin"
  image=$work/root.img
  truncate -s 64M "$image"
  mke2fs -q -t ext4 -d "$work/tree" "$image"
  wan=origin_latency=5ms,origin_bandwidth=100Mbit
else
  image=$cache/rootfs.img
  [ -f "$image" ] || { echo "link_bench.sh: no $image; run session_bench.sh once" >&2; exit 1; }
fi
export LSIFS_STORE=$work/store
lsictl() { "$bin/lsictl" "$@"; }
lsictl init "$LSIFS_STORE" >/dev/null
lsictl key create site-a >/dev/null
lsictl key create site-b >/dev/null
lsictl import vol "$image" >/dev/null 2>&1
mount_it() {  # OPTIONS
  "$bin/lsifs" "$LSIFS_STORE" "$mnt" -e site-a -f -o "session_idle=1s,$wan,$1" 2>>"$work/lsifs.log" &
  pid=$!
  for _ in $(seq 100); do mountpoint -q "$mnt" && return; sleep 0.1; done
  cat "$work/lsifs.log" >&2
  exit 1
}
unmount_it() { fusermount3 -u "$mnt"; wait "$pid"; pid=""; }
queue_empty() { [ "$(lsictl assemblies --json)" = "[]" ]; }
wait_queue_empty() { for _ in $(seq 600); do queue_empty && return; sleep 0.5; done; }
assembly_running() {
  lsictl assemblies --json | python3 -c "
import json, sys; sys.exit(0 if any(a['state'] == 'running' and a['done_bytes'] > 0
                                    for a in json.load(sys.stdin)) else 1)"
}

# Cold reads of distinct present blocks, one at a time, 20 ms apart: the
# latency of each, in ms (JSON). SEED picks the blocks.
demand_reads() {  # SEED
  python3 - "$mnt/vol.img" "$reads" "$1" <<'PY'
import json, os, random, sys, time
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDONLY)
size = os.fstat(fd).st_size
rng = random.Random(seed)
lat = []
while len(lat) < n:
    off = rng.randrange(size // 65536) * 65536 + 4096 * (seed % 16)
    t = time.perf_counter()
    data = os.pread(fd, 4096, off)
    dt = (time.perf_counter() - t) * 1000
    if data.count(0) == len(data):
        continue  # a hole of the volume: no origin read, not a demand read
    lat.append(dt)
    time.sleep(0.02)
os.close(fd)
print(json.dumps(lat))
PY
}
summary() {  # JSON list -> "median p99"
  python3 -c "
import json, sys
l = sorted(json.loads(sys.argv[1])); n = len(l)
print('%.1f %.1f' % (l[n // 2], l[min(n - 1, int(n * 0.99))]))" "$1"
}

# ---- 1. demand reads, idle link vs a full low assembly ---------------------
mount_it "preassemble=off"
lsictl restore -e site-a -v vol >/dev/null 2>&1
sleep 1.2
idle=$(demand_reads 1)
lsictl preassemble -e site-b -v vol --strategy full --priority low >/dev/null 2>&1 &
asm=$!
for _ in $(seq 200); do assembly_running && break; sleep 0.1; done
busy=$(demand_reads 2)
still=0
assembly_running && still=1
id=$(lsictl assemblies --json | python3 -c "import json,sys; l=json.load(sys.stdin); print(l[0]['id'] if l else '')")
[ -n "$id" ] && lsictl assemblies cancel "$id" >/dev/null
wait "$asm" 2>/dev/null || true
unmount_it
read -r idle_med idle_p99 <<<"$(summary "$idle")"
read -r busy_med busy_p99 <<<"$(summary "$busy")"
echo "demand reads ($profile, $reads cold 4 KiB reads): idle link median ${idle_med} ms p99 ${idle_p99} ms;" \
  "during a full low assembly median ${busy_med} ms p99 ${busy_p99} ms (assembly still running at the end: $still)"

# ---- 2. restore right after a session ends ---------------------------------
session() {  # reads what a start of the system reads, then closes
  python3 - "$mnt/vol.img" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for i in range(0, 3000):
    os.pread(fd, 4096, (i * 7919 % 20000) * 4096)
os.close(fd)
PY
}
restore_after_session() {  # OPTIONS: seconds for the restore after a session
  mount_it "$1"
  lsictl restore -e site-a -v vol >/dev/null 2>&1
  sleep 1.2
  session
  sleep 3  # the session ends (session_idle=1s, checked each second)
  wait_queue_empty
  local t0 t1
  t0=$(date +%s.%N)
  lsictl restore -e site-a -v vol >/dev/null 2>&1
  t1=$(date +%s.%N)
  unmount_it
  python3 -c "print('%.2f' % ($t1 - $t0))"
}
with_pre=$(restore_after_session "preassemble=auto")
without=$(restore_after_session "preassemble=off")
echo "restore right after a session ends: ${with_pre} s with the pre-assembled LSI waiting," \
  "${without} s when it must assemble (preassemble=off)"
if [ -n "$json" ]; then
  python3 -c "
import json, sys
print(json.dumps({'profile': '$profile', 'reads': $reads,
  'demand_idle_ms': {'median': $idle_med, 'p99': $idle_p99},
  'demand_during_low_assembly_ms': {'median': $busy_med, 'p99': $busy_p99},
  'assembly_still_running': bool($still),
  'restore_after_session_s': {'preassembled': $with_pre, 'assembling': $without}}, indent=1))" >"$json"
fi
