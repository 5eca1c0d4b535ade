#!/usr/bin/env bash
# Import throughput of a real ext4 image: builds an image from a real tree
# (default /usr/lib, ~4 GiB; at least 500 MB of data), imports it RUNS times
# into fresh stores with a cold page cache, and reports the median MB/s of
# image bytes and of data bytes. --smoke: a small tree, one run, no cache drop.
# Usage: import_bench.sh LSICTL [--smoke] [--tree DIR] [--runs N] [--json FILE]
set -euo pipefail
lsictl=$1; shift
tree=/usr/lib runs=5 json="" smoke=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1; tree=/usr/share/common-licenses; runs=1 ;;
    --tree) tree=$2; shift ;;
    --runs) runs=$2; shift ;;
    --json) json=$2; shift ;;
    *) echo "import_bench: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/lsifs-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

data_kb=$(du -sk --apparent-size "$tree" | cut -f1)
size_mb=$(( data_kb * 13 / 10 / 1024 + 64 ))
truncate -s "${size_mb}M" "$work/fs.img"
mke2fs -q -t ext4 -d "$tree" "$work/fs.img"
used_bytes=$(( $(du -k "$work/fs.img" | cut -f1) * 1024 ))
image_bytes=$(stat -c %s "$work/fs.img")
echo "image: $tree -> ${size_mb} MiB ext4, $((used_bytes / 1000000)) MB allocated"

results=()
for ((r = 1; r <= runs; r++)); do
  rm -rf "$work/store"
  "$lsictl" init "$work/store" >/dev/null
  if [ "$smoke" -eq 0 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
  out=$("$lsictl" -s "$work/store" --json import vol "$work/fs.img")
  secs=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  results+=("$secs")
  echo "run $r: ${secs}s"
done
python3 - "$image_bytes" "$used_bytes" "$json" "${results[@]}" <<'PY'
import json, statistics, sys
image, used, path, *secs = sys.argv[1:]
secs = [float(s) for s in secs]
med = statistics.median(secs)
res = {"benchmark": "import", "image_bytes": int(image), "data_bytes": int(used),
       "runs": secs, "median_seconds": med,
       "image_mb_per_s": int(image) / med / 1e6, "data_mb_per_s": int(used) / med / 1e6}
print(f"median {med:.2f}s: {res['image_mb_per_s']:.0f} MB/s of image, {res['data_mb_per_s']:.0f} MB/s of data")
if path:
    open(path, "w").write(json.dumps(res) + "\n")
PY
