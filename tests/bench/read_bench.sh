#!/usr/bin/env bash
# B1 (BENCHMARKS.md): read throughput of a fully local LSI (every block in a
# delta layer) against the same raw image on local disk, cold page cache,
# measured side by side in each run: sequential 1 MiB reads and random 4 KiB
# reads (fio, one job, psync). Prints medians and ratios; --json writes them.
# With --b5 (BENCHMARKS.md B5) the baseline is not the raw image but the same
# LSI on a second mount with access recording off (-o record=0), so that the
# ratio is the cost of recording.
# Usage: read_bench.sh BIN_DIR [--smoke] [--b5] [--tree DIR] [--runs N] [--seconds S]
#                      [--json FILE] [-o LSIFS_OPTIONS]
# Needs root (mount, drop_caches).
set -euo pipefail
bin=$1; shift
tree=/usr/share runs=5 seconds=10 json="" smoke=0 mount_opts="" b5=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1; tree=/usr/share/common-licenses; runs=1; seconds=1 ;;
    --b5) b5=1 ;;
    --tree) tree=$2; shift ;;
    --runs) runs=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --json) json=$2; shift ;;
    -o) mount_opts=$2; shift ;;
    *) echo "read_bench: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/lsifs-b1.XXXXXX")
mnt=$work/mnt mnt0=$work/mnt0
pids=()
cleanup() {
  for m in "$mnt" "$mnt0"; do
    if mountpoint -q "$m" 2>/dev/null; then fusermount3 -u "$m" || fusermount3 -u -z "$m"; fi
  done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt" "$mnt0"

data_kb=$(du -sk --apparent-size "$tree" | cut -f1)
size_mb=$(( data_kb * 13 / 10 / 1024 + 64 ))
truncate -s "${size_mb}M" "$work/raw.img"
mke2fs -q -t ext4 -i 4096 -d "$tree" "$work/raw.img"
export LSIFS_STORE=$work/store
"$bin/lsictl" init "$LSIFS_STORE" >/dev/null
"$bin/lsictl" key create bench >/dev/null
"$bin/lsictl" import vol "$work/raw.img" >/dev/null 2>&1
id=$("$bin/lsictl" preassemble -e bench -v vol --strategy full 2>/dev/null)
"$bin/lsictl" lsi deliver "$id" 2>/dev/null
start_mount() {  # start_mount MOUNTPOINT OPTIONS
  "$bin/lsifs" "$LSIFS_STORE" "$1" -e bench -f ${2:+-o "$2"} 2>>"$work/lsifs.log" &
  pids+=($!)
  for _ in $(seq 100); do mountpoint -q "$1" && break; sleep 0.1; done
  mountpoint -q "$1" || { cat "$work/lsifs.log" >&2; exit 1; }
}
start_mount "$mnt" "$mount_opts"
lsi=$mnt/by-id/$id.img
baseline=$work/raw.img baseline_name=native
if [ "$b5" -eq 1 ]; then
  start_mount "$mnt0" "record=0${mount_opts:+,$mount_opts}"
  baseline=$mnt0/by-id/$id.img baseline_name="recording off"
fi
echo "image: $tree -> ${size_mb} MiB ext4; LSI $id (all blocks in one delta layer)"
echo "baseline: $baseline_name"

cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
fio_run() {  # fio_run FILE rw bs -> prints "bytes_per_s iops"
  local extra=()
  [ "$2" = randread ] && extra=(--time_based --runtime="$seconds")
  fio --name=b1 --filename="$1" --readonly --rw="$2" --bs="$3" --ioengine=psync --numjobs=1 \
      --invalidate=1 "${extra[@]}" --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]; print(j["bw_bytes"], j["iops"])'
}
rows=()
for ((r = 1; r <= runs; r++)); do
  # Alternate which goes first, so that neither gains from the order.
  targets="native lsi"; [ $((r % 2)) -eq 0 ] && targets="lsi native"
  for target in $targets; do
    f=$baseline; [ "$target" = lsi ] && f=$lsi
    cold; seq=$(fio_run "$f" read 1M | cut -d' ' -f1)
    cold; rnd=$(fio_run "$f" randread 4k | cut -d' ' -f2)
    rows+=("$r $target $seq $rnd")
    label=$target; [ "$target" = native ] && label=$baseline_name
    echo "run $r $label: sequential $((seq / 1000000)) MB/s, random 4K ${rnd%.*} IOPS"
  done
done
printf '%s\n' "${rows[@]}" | python3 -c '
import json, statistics, sys
smoke, path, baseline = sys.argv[1] == "1", sys.argv[2], sys.argv[3]
runs = {}
for line in sys.stdin:
    r, target, seq, rnd = line.split()
    runs.setdefault(int(r), {})[target] = (float(seq), float(rnd))
seq_ratio = [v["lsi"][0] / v["native"][0] for v in runs.values()]
rnd_ratio = [v["lsi"][1] / v["native"][1] for v in runs.values()]
med = lambda xs: statistics.median(xs)
res = {"benchmark": "B1" if baseline == "native" else "B5", "baseline": baseline, "runs": len(runs),
       "baseline_seq_mb_s": med([v["native"][0] for v in runs.values()]) / 1e6,
       "lsi_seq_mb_s": med([v["lsi"][0] for v in runs.values()]) / 1e6,
       "baseline_rand4k_iops": med([v["native"][1] for v in runs.values()]),
       "lsi_rand4k_iops": med([v["lsi"][1] for v in runs.values()]),
       "seq_ratio_median": med(seq_ratio), "rand4k_ratio_median": med(rnd_ratio),
       "goal": {"seq_ratio": 0.8, "rand4k_ratio": 0.5} if baseline == "native" else {"ratio": 0.97}}
print("%-22s %14s %12s %8s" % ("", baseline, "lsifs", "ratio"))
print("%-22s %14.0f %12.0f %8.3f" % ("sequential 1M (MB/s)", res["baseline_seq_mb_s"], res["lsi_seq_mb_s"], res["seq_ratio_median"]))
print("%-22s %14.0f %12.0f %8.3f" % ("random 4K (IOPS)", res["baseline_rand4k_iops"], res["lsi_rand4k_iops"], res["rand4k_ratio_median"]))
if path:
    open(path, "w").write(json.dumps(res) + "\n")
' "$smoke" "$json" "$baseline_name"
