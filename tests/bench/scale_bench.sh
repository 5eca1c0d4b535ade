#!/usr/bin/env bash
# B7 (BENCHMARKS.md): scale. lsifs's memory and the time to mount and to
# open an LSI for sparse volumes of 1 GiB, 64 GiB and 1 TiB virtual size
# with 10^3..10^6 present blocks; and catalog operations on a store with
# many LSIs.
#
#   scale_bench.sh BIN_DIR [--json FILE] [--svg FILE] [--smoke] [--quick]
#                  [--catalog-fill PATH] [--reps N] [--only volumes|catalog]
#
# BIN_DIR holds lsictl and lsifs. --catalog-fill: the catalog_fill program
# (tests/bench/catalog_fill.cc; default: BIN_DIR/catalog_fill, else the
# build tree's); it fills a catalog with thousands of LSIs in seconds.
#
# Volumes: sparse image files whose present blocks (incompressible, each
# starting with its block number) lie in 256 KiB extents spread evenly over
# the volume, each imported into a store of its own of 4 KiB blocks (the
# block-count series, so that 10^6 blocks take 4 GiB) or of the default
# 64 KiB. The image file is deleted once imported (probe reads check against
# the generator). Per volume: import time (once), `lsictl preassemble
# --strategy none` (3 runs) and `--strategy full` (once; every present block
# into a delta layer, origin unthrottled, no daemon), both delivered. Then,
# N times over, each a fresh lsifs (-f, preassemble=off so no background
# assembly runs), for each LSI (lazy = base only, full = every block local)
# and each page cache state (cold = the store's files dropped from the page
# cache with posix_fadvise, nothing else of the machine's; warm = the
# store's files, but for the middle of big ones, read into it just before):
#   mount     lsifs start to mountpoint mounted
#   RSS idle  VmRSS a second after mounting (the lsifs process: its heap,
#             threads' stacks and what it touched of its libraries)
#   open      the first open() of MOUNT/by-id/ID.img: LsiFs::OpenImage ->
#             LsiImage::Open loads the manifest, the layers' indexes and the
#             base snapshot's map (an image stays open in lsifs until
#             session_idle after its last close, so only a fresh mount
#             times a first open)
#   RSS open  VmRSS/VmHWM with the image open, after reading (and checking)
#             up to 8 present blocks spread over it and 2 absent ones
# Catalog: a store whose one volume has 10^3 and then 10^4 LSIs (half
# delivered) made by catalog_fill in a burst, as an assembler making many
# at once does, and the same with creation times a minute apart (--spread):
# `lsictl lsi list`, `lsictl --json lsi list`, `lsictl restore` (one that
# assembles a new LSI, and one that finds it fresh), mounting lsifs, its
# RSS, `ls -l MOUNT/by-id` and lsifs's idle CPU; each also on the empty
# catalog, so that the cost per LSI is the difference over it.
#
# --only volumes|catalog: one half. --quick: up to 10^5 blocks and 10^3
# LSIs, 3 runs (a few minutes).
# --smoke: tiny volumes and 50 LSIs, 1 run (seconds); checks that reads
# return what was written and that listings and the mount show every LSI.
# Needs root (FUSE), python3, and a TMPDIR whose filesystem keeps holes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tool=$here/scale_tool.py
[ $# -ge 1 ] || { echo "usage: scale_bench.sh BIN_DIR [--json FILE] [--svg FILE] [--smoke] [--quick]" >&2; exit 2; }
bin=$1
shift
json="" svg="" mode=full fill="" reps="" only=""
while [ $# -gt 0 ]; do
  case $1 in
    --json) json=$2; shift ;;
    --svg) svg=$2; shift ;;
    --smoke) mode=smoke ;;
    --quick) mode=quick ;;
    --catalog-fill) fill=$2; shift ;;
    --reps) reps=$2; shift ;;
    --only) only=$2; shift ;;
    *) echo "scale_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for p in lsictl lsifs; do
  [ -x "$bin/$p" ] || { echo "scale_bench.sh: $bin/$p is not an executable (BIN_DIR holds lsictl and lsifs)" >&2; exit 2; }
done
if [ -z "$fill" ]; then
  for f in "$bin/catalog_fill" "$here/../../build/tests/bench/catalog_fill"; do
    [ -x "$f" ] && { fill=$f; break; }
  done
fi
if [ -z "$fill" ]; then
  echo "scale_bench.sh: catalog_fill not found; build it (cmake --build build --target catalog_fill) or pass --catalog-fill PATH" >&2
  exit 2
fi
[ -x "$fill" ] || { echo "scale_bench.sh: --catalog-fill $fill is not an executable" >&2; exit 2; }
case $only in "" | volumes | catalog) ;; *) echo "scale_bench.sh: --only takes volumes or catalog" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "scale_bench.sh: needs root (FUSE mounts)" >&2; exit 1; }

G=$((1 << 30)) T=$((1 << 40))
# Rows: "BLOCK_SIZE VIRTUAL_BYTES PRESENT_BLOCKS". The 64 GiB rows of 4 KiB
# blocks are the block-count series; the rest, at a fixed count, the
# virtual-size series (at both block sizes).
case $mode in
  full)
    rows=("4096 $((64 * G)) 1000" "4096 $((64 * G)) 10000" "4096 $((64 * G)) 100000"
          "4096 $((64 * G)) 1000000" "4096 $G 100000" "4096 $T 100000"
          "65536 $G 10000" "65536 $((64 * G)) 10000" "65536 $T 10000")
    catalog_sizes=(1000 10000) variants=(burst spread) settle=1 idle_s=3; : "${reps:=5}" ;;
  quick)
    rows=("4096 $((64 * G)) 1000" "4096 $((64 * G)) 10000" "4096 $((64 * G)) 100000"
          "4096 $G 10000" "4096 $T 10000" "65536 $G 1000" "65536 $T 1000")
    catalog_sizes=(100 1000) variants=(burst) settle=1 idle_s=3; : "${reps:=3}" ;;
  smoke)
    rows=("4096 $G 100" "4096 $G 1000" "4096 $T 1000" "65536 $G 100")
    catalog_sizes=(20 50) variants=(burst) settle=0.3 idle_s=1; : "${reps:=1}" ;;
esac
extent_bytes=$((256 << 10))

work=$(mktemp -d "${TMPDIR:-/var/tmp}/lsifs-b7.XXXXXX")
mnt=$work/mnt
mkdir -p "$mnt"
pids=()
# Whether a process runs: a zombie has exited (lsifs's parent was the
# starter, which is gone: init reaps it, in its own time).
running() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  [ "${s%% *}" != Z ]
}
cleanup() {
  set +e
  if mountpoint -q "$mnt"; then fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt"; fi
  # Only the daemons this run started, by pid.
  for p in "${pids[@]}"; do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = lsifs ] && running "$p"; then
      kill "$p" 2>/dev/null
      for _ in $(seq 100); do running "$p" || break; sleep 0.1; done
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rows_out=$work/rows.jsonl cat_out=$work/catalog.jsonl
: >"$rows_out"
: >"$cat_out"
now() { echo "$EPOCHREALTIME"; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 6))" "$1" "$(now)"; }
field() { python3 -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
median() { python3 -c "import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }

# Starts lsifs on $mnt for $store (extension site-a); sets $lsifs_pid and
# $mount_ms. Its log is $work/lsifs.log.
start_lsifs() {  # start_lsifs STORE
  local out
  out=$(python3 "$tool" start-lsifs "$work/lsifs.log" "$mnt" 60 \
          "$bin/lsifs" "$1" "$mnt" -e site-a -f -o preassemble=off) || {
    tail -5 "$work/lsifs.log" >&2
    exit 1
  }
  lsifs_pid=${out% *} mount_ms=${out#* }
  pids+=("$lsifs_pid")
}
stop_lsifs() {
  fusermount3 -u "$mnt" || { echo "scale_bench.sh: cannot unmount $mnt" >&2; exit 1; }
  for _ in $(seq 300); do running "$lsifs_pid" || return 0; sleep 0.02; done
  echo "scale_bench.sh: lsifs $lsifs_pid did not exit after unmount" >&2
  exit 1
}

# lsictl, its error (the last line it wrote on stderr) said in one line.
ctl() {
  if ! "$bin/lsictl" "$@" 2>"$work/lsictl.err"; then
    echo "scale_bench.sh: lsictl $*: $(tail -1 "$work/lsictl.err")" >&2
    exit 1
  fi
}
new_store() {  # new_store DIR BLOCK_SIZE
  ctl init "$1" --block-size "$2" >/dev/null
  # No eviction while the benchmark fills the store: every LSI must stay.
  ctl -s "$1" config set lsi_cap 1000T >/dev/null
  ctl -s "$1" config set free_floor 0 >/dev/null
  ctl -s "$1" key create site-a >/dev/null
}

# ---- volumes ---------------------------------------------------------------
seed=1
for row in "${rows[@]}"; do
  [ "$only" = catalog ] && break
  read -r bs size present <<<"$row"
  vol=v$((size >> 30))g-$present
  seed=$((seed + 1))
  # A store of its own: a mount holds the manifest of every LSI delivered
  # to its extension, block lists included (8 bytes a block), so in a
  # shared store the idle memory of a row depended on the rows before it.
  store=$work/store-$((bs / 1024))k-$vol
  new_store "$store" "$bs"
  export LSIFS_STORE=$store
  img=$work/$vol.img
  python3 "$tool" make-image "$img" "$size" "$bs" "$present" "$extent_bytes" "$seed" >/dev/null
  t0=$(now)
  imported=$(ctl --json import "$vol" "$img")
  import_s=$(since "$t0")
  rm -f "$img"
  got=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['snapshot_info']['present_blocks'])" "$imported")
  [ "$got" -eq "$present" ] ||
    { echo "scale_bench.sh: $vol imported $got present blocks, not $present" >&2; exit 1; }
  none_times=()
  for r in 1 2 3; do
    t0=$(now)
    id=$(ctl preassemble -e site-a -v "$vol" --strategy none)
    none_times+=("$(since "$t0")")
    if [ "$r" -eq 1 ]; then lazy=$id; fi
  done
  t0=$(now)
  full=$(ctl preassemble -e site-a -v "$vol" --strategy full)
  full_s=$(since "$t0")
  ctl lsi deliver "$lazy"
  ctl lsi deliver "$full"
  printf '{"kind":"setup","block_size":%s,"virtual_bytes":%s,"present_blocks":%s,"extent_bytes":%s,"import_s":%s,"assemble_none_s":%s,"assemble_none_runs_s":[%s],"assemble_full_s":%s,"loadavg_1m":%s}\n' \
    "$bs" "$size" "$present" "$extent_bytes" "$import_s" "$(median "${none_times[@]}")" \
    "$(IFS=,; echo "${none_times[*]}")" "$full_s" "$(cut -d' ' -f1 /proc/loadavg)" >>"$rows_out"
  echo "$vol ($((bs / 1024)) KiB blocks): imported in ${import_s}s, full assembly ${full_s}s" >&2
  for r in $(seq "$reps"); do
    for lsi in lazy full; do
      id=$lazy
      if [ "$lsi" = full ]; then id=$full; fi
      for cache in warm cold; do
        # Warm: the store's metadata read just before (other benchmarks on
        # a shared machine drop the page cache); cold: dropped.
        if [ "$cache" = cold ]; then python3 "$tool" evict "$store"; else python3 "$tool" warm "$store"; fi
        start_lsifs "$store"
        probe=$(python3 "$tool" probe "$mnt/by-id/$id.img" "$lsifs_pid" "$size" "$bs" "$present" \
                  "$extent_bytes" "$seed" "$settle") || { stop_lsifs; exit 1; }
        stop_lsifs
        printf '{"kind":"run","block_size":%s,"virtual_bytes":%s,"present_blocks":%s,"lsi":"%s","cache":"%s","rep":%s,"mount_ms":%s,%s\n' \
          "$bs" "$size" "$present" "$lsi" "$cache" "$r" "$mount_ms" "${probe#\{}" >>"$rows_out"
      done
    done
  done
done

# ---- the catalog -------------------------------------------------------------
# A store of 4 KiB blocks with one volume of 64 blocks; every LSI holds 4 of
# them in a delta layer. Before each timed operation the store is read into
# the page cache (as on a server that uses its catalog; and other
# benchmarks on a shared machine drop caches), so that the figures are the
# catalog code's, not the disk's.
catalog_run() {  # catalog_run VARIANT STORE LSIS DELIVERED
  local variant=$1 store=$2 n=$3 delivered=$4
  local r t0 text out listed json_count shown cpu0 cpu1 id again rss idle
  local list_s list_json_s new_s reuse_s ls_s
  export LSIFS_STORE=$store
  for r in $(seq "$reps"); do
    python3 "$tool" warm "$store"
    t0=$(now)
    text=$(ctl lsi list)
    list_s=$(since "$t0")
    listed=$(grep -c '^[0-9a-f]\{16\} ' <<<"$text" || true)
    python3 "$tool" warm "$store"
    t0=$(now)
    out=$(ctl --json lsi list)
    list_json_s=$(since "$t0")
    json_count=$(python3 -c "import json, sys; print(len(json.load(sys.stdin)))" <<<"$out")
    if [ "$listed" -ne "$n" ] || [ "$json_count" -ne "$n" ]; then
      echo "scale_bench.sh: lsictl lsi list shows $listed LSIs (--json: $json_count), not $n" >&2
      exit 1
    fi
    # A restore that assembles (no fresh LSI), then one that finds it fresh;
    # the LSI is dropped after, so that the catalog keeps its size.
    python3 "$tool" warm "$store"
    t0=$(now)
    id=$(ctl restore -e site-a -v cat)
    new_s=$(since "$t0")
    t0=$(now)
    again=$(ctl restore -e site-a -v cat)
    reuse_s=$(since "$t0")
    [ "$again" = "$id" ] || { echo "scale_bench.sh: the second restore did not reuse LSI $id" >&2; exit 1; }
    ctl lsi drop "$id" >/dev/null
    python3 "$tool" warm "$store"
    start_lsifs "$store"
    sleep "$settle"
    # Every name looked up: readdir of by-id, then a lookup (stat) of each.
    t0=$(now)
    shown=$(ls -l "$mnt/by-id" | grep -c '\.img$' || true)
    ls_s=$(since "$t0")
    if [ "$shown" -ne "$delivered" ]; then
      echo "scale_bench.sh: the mount shows $shown images, not the $delivered delivered" >&2
      exit 1
    fi
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$lsifs_pid/status")
    # Idle CPU: the mount rereads the delivery record once a second.
    cpu0=$(python3 "$tool" cpu "$lsifs_pid")
    t0=$(now)
    sleep "$idle_s"
    cpu1=$(python3 "$tool" cpu "$lsifs_pid")
    idle=$(python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) / float(sys.argv[3]), 4))" \
           "$cpu0" "$cpu1" "$(since "$t0")")
    stop_lsifs
    printf '{"variant":"%s","lsis":%s,"rep":%s,"loadavg_1m":%s,"list_s":%s,"list_json_s":%s,"restore_s":%s,"restore_reuse_s":%s,"mount_ms":%s,"rss_idle_kib":%s,"ls_by_id_s":%s,"idle_cpu_share":%s,"listed":%s,"delivered_shown":%s}\n' \
      "$variant" "$n" "$r" "$(cut -d' ' -f1 /proc/loadavg)" "$list_s" "$list_json_s" "$new_s" "$reuse_s" "$mount_ms" "$rss" "$ls_s" "$idle" \
      "$listed" "$shown" >>"$cat_out"
  done
  echo "catalog ($variant): $n LSIs measured" >&2
}
for variant in "${variants[@]}"; do
  [ "$only" = volumes ] && break
  store=$work/catalog-$variant
  new_store "$store" 4096
  export LSIFS_STORE=$store
  python3 "$tool" make-image "$work/cat.img" "$G" 4096 64 "$extent_bytes" 7 >/dev/null
  ctl import cat "$work/cat.img" >/dev/null
  rm -f "$work/cat.img"
  # burst: as catalog_fill makes them, a few hundred a second; spread: made
  # a minute apart (creation and delivery times).
  spread=0
  if [ "$variant" = spread ]; then spread=60; fi
  have=0 delivered=0
  catalog_run "$variant" "$store" 0 0
  for n in "${catalog_sizes[@]}"; do
    out=$("$fill" "$store" -e site-a -v cat --count $((n - have)) --layer-blocks 4 --deliver-every 2 \
            --spread "$spread" 2>"$work/fill.log") ||
      { echo "scale_bench.sh: catalog_fill: $(tail -1 "$work/fill.log")" >&2; exit 1; }
    delivered=$((delivered + $(field "$out" delivered)))
    have=$n
    catalog_run "$variant" "$store" "$n" "$delivered"
  done
done

python3 "$tool" report "$rows_out" "$cat_out" "$mode" "$reps" "$json" "$svg"
