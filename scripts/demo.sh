#!/usr/bin/env bash
# The main job, on an embedded default (a few minutes, as root): builds
# lsifs; builds (or reuses) a real ext4 image of a real tree, /usr/share,
# with mke2fs -d; imports it into a store in ./demo; mounts lsifs at
# extension site-a over a simulated edge WAN (40 ms, 200 Mbit/s); then runs
# restore sessions of real programs (find, cat, zcat, grep, md5sum, file,
# python3)
# through lsifs + losetup + the ext4 inside:
#   1. the first restore: nothing learned yet, every first read waits on the
#      WAN (the stalls show);
#   2-4. three more restores, each session a seeded variation of the tasks;
#      the Predictive Snapshot Assembler pre-assembles each next restore
#      from the sessions before it (queued by lsifs when a session ends);
#   5. a new restore and a new session, never seen before;
# and prints the sessions side by side (time, share of blocks read without a
# wait, what crossed the WAN) and what was learned (access show, a heat
# map). Everything it mounts is undone on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root (it mounts, and uses loop devices)" >&2; exit 1; }
# LSIFS_BIN_DIR (programs already built: the test suite's smoke run),
# LSIFS_DEMO_DIR (where it works, ./demo) and LSIFS_DEMO_TREE (/usr/share).
bin=${LSIFS_BIN_DIR:-}
if [ -z "$bin" ]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh >/dev/null
  bin=$PWD/build/mount-tools
fi
demo=${LSIFS_DEMO_DIR:-$PWD/demo}
store=$demo/store
lsictl=$bin/lsictl
lsifs=$bin/lsifs
tree=${LSIFS_DEMO_TREE:-/usr/share}
mnt=$demo/mnt inner=$demo/inner loopdev="" daemon=""
cleanup() {
  set +e
  mountpoint -q "$inner" 2>/dev/null && umount "$inner"
  [ -n "$loopdev" ] && losetup -d "$loopdev"
  loopdev=""
  mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
  [ -n "$daemon" ] && wait "$daemon" 2>/dev/null
  daemon=""
  return 0
}
trap cleanup EXIT
trap 'echo; echo "interrupted: unmounted and detached what the demo had set up" >&2; exit 130' INT TERM
mountpoint -q "$inner" 2>/dev/null && umount "$inner"
mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
mkdir -p "$demo"
rm -rf "$store" "$mnt" "$inner" "$demo/sessions.tsv"
mkdir -p "$mnt" "$inner"
export LSIFS_STORE=$store

step() { printf '\n== %s\n' "$*"; }

step "a real ext4 image of $tree (mke2fs -d; built once, then reused)"
image=$demo/$(basename "$tree").img
# Rebuilt when the tree changed since (a package was installed or removed).
if [ ! -f "$image" ] || [ -n "$(find "$tree" -newer "$image" -print -quit)" ]; then
  rm -f "$image.tmp"
  truncate -s "$(( $(du -sm "$tree" | cut -f1) * 13 / 10 + 128 ))M" "$image.tmp"
  mke2fs -q -t ext4 -d "$tree" "$image.tmp"
  mv "$image.tmp" "$image"
  echo "built $image from $(du -sh --apparent-size "$tree" | cut -f1) of files"
else
  echo "reusing $image"
fi

step "a store, the key of extension site-a, and the image imported as volume usr-share"
"$lsictl" init "$store"
"$lsictl" key create site-a
"$lsictl" import usr-share "$image"

step "mount lsifs at site-a over the edge WAN model (40 ms round trip, 200 Mbit/s)"
"$lsifs" "$store" "$mnt" -e site-a -f \
  -o origin_latency=40ms,origin_bandwidth=200Mbit,session_idle=1s 2>>"$demo/lsifs.log" &
daemon=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { cat "$demo/lsifs.log" >&2; exit 1; }
echo "lsifs $mnt (log: $demo/lsifs.log)"

# The tasks of a session: a core every session runs (what every start
# does: walk the documentation, read the licenses), then a seeded half of
# the others in a seeded order, so that no session replays the one before.
# Each reads a part of the tree with a real program; parts a machine lacks
# read as nothing.
R=$inner
core_tasks=(
  'echo "  $(find "$R/doc" | wc -l) entries under doc/"'
  'echo "  $(cat "$R"/common-licenses/* | wc -l) lines of common licenses"'
)
varied_tasks=(
  'echo "  $(zcat "$R"/man/man1/*.gz 2>/dev/null | wc -l) lines of manual pages, section 1"'
  'echo "  $(zcat "$R"/man/man[2-8]/*.gz 2>/dev/null | wc -l) lines of manual pages, sections 2-8"'
  'echo "  $(grep -l "GNU General Public" "$R"/doc/*/copyright 2>/dev/null | wc -l) packages under the GPL"'
  'echo "  $(find "$R/locale" -name "*.mo" 2>/dev/null | head -400 | xargs -r md5sum | wc -l) message catalogs checksummed"'
  'echo "  $(find "$R"/perl* -name "*.pm" 2>/dev/null | xargs -r grep -h "^package " | wc -l) perl packages"'
  'python3 -c "import pathlib, sys, zoneinfo; n = sum(1 for p in pathlib.Path(sys.argv[1], \"zoneinfo\").rglob(\"*\") if p.is_file() and p.read_bytes()[:4] == b\"TZif\"); print(f\"  {n} time zones (python3)\")" "$R"'
  'echo "  $(cat "$R"/i18n/locales/* 2>/dev/null | wc -l) lines of locale definitions"'
  'echo "  $(find "$R/vim" -name "*.vim" 2>/dev/null | xargs -r grep -c "function" | wc -l) vim scripts read"'
  'echo "  $(find "$R/icons" "$R/pixmaps" -type f 2>/dev/null | head -600 | xargs -r file | grep -c image) icons"'
  'echo "  $(find "$R/mime" "$R/xml" -name "*.xml" 2>/dev/null | xargs -r cat | wc -c) bytes of XML"'
)
session_tasks() {  # session_tasks SEED: indices of the varied tasks it runs
  python3 -c "
import random, sys
r = random.Random(int(sys.argv[1]) * 7919)
print(' '.join(map(str, r.sample(range(int(sys.argv[2])), int(sys.argv[2]) // 2))))" "$1" "${#varied_tasks[@]}"
}

timed() {  # timed TASK: runs it, its line led by the seconds it took
  local t0 line
  t0=$(date +%s.%N)
  line=$(eval "$1")
  printf '%6.1f s %s\n' "$(python3 -c "print($(date +%s.%N) - $t0)")" "$line"
}
# session N LSI: attach the LSI's image, mount the ext4 inside, run session
# N with a cold page cache, detach; then one line of its figures.
session() {
  local n=$1 id=$2 t0 t1
  loopdev=$(losetup -r -f --show "$mnt/by-id/$id.img")
  mount -o ro,noload "$loopdev" "$inner"
  sync; echo 3 >/proc/sys/vm/drop_caches
  echo "losetup -r $loopdev $mnt/by-id/$id.img; mount -o ro,noload $loopdev $inner"
  echo "session $n, cold page cache:"
  t0=$(date +%s.%N)
  for t in "${core_tasks[@]}"; do timed "$t"; done
  for i in $(session_tasks "$n"); do timed "${varied_tasks[$i]}"; done
  t1=$(date +%s.%N)
  umount "$inner"
  losetup -d "$loopdev"
  loopdev=""
  sleep 1.6  # the session ends (session_idle) and lsifs saves its counters
  python3 - "$n" "$id" "$t0" "$t1" "$mnt/.lsifs/$id.json" "$("$lsictl" lsi show "$id" --json)" \
    <<'PY' >>"$demo/sessions.tsv"
import json, sys
n, lsi, t0, t1, counters, show = sys.argv[1:7]
c = json.load(open(counters))["session_counters"]
l = json.loads(show)
ahead = l["prefetched_blocks"] * l["block_size"]
print(f"{n}\t{lsi}\t{l['prefetched_blocks']}\t{float(t1) - float(t0):.1f}\t"
      f"{c['no_wait_share']:.3f}\t{c['waited_blocks']}\t{ahead / 1e6:.1f}\t{c['origin_bytes'] / 1e6:.1f}")
PY
}
show_session() {
  IFS=$'\t' read -r n _ layer secs share waited ahead fetched <<<"$(tail -n 1 "$demo/sessions.tsv")"
  echo "session $n: ${secs} s; ${waited} blocks waited on the WAN (share read without a wait: $share);" \
    "${ahead} MB in its delta layers, ${fetched} MB fetched on demand"
}

step "restore 1: nothing learned yet, so every first read waits on the WAN"
id=$("$lsictl" restore -e site-a -v usr-share)
ls -l "$mnt" "$mnt/by-id"
session 1 "$id"
show_session

for n in 2 3 4; do
  step "restore $n: pre-assembled from the sessions before it; session $n varies the tasks"
  "$lsictl" assemblies
  id=$("$lsictl" restore -e site-a -v usr-share)
  "$lsictl" lsi show "$id" | grep -E "^(strategy|layers):"
  session "$n" "$id"
  show_session
done

step "the PSA's plan for the next restore, and why"
# lsifs queued this pre-assembly when session 4 ended; --explain shows the plan.
"$lsictl" preassemble -e site-a -v usr-share --explain
step "restore 5 and a session never seen before"
id=$("$lsictl" restore -e site-a -v usr-share)
session 5 "$id"
show_session

step "side by side"
python3 - "$demo/sessions.tsv" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print(f"{'session':8} {'LSI':17} {'blocks ahead':>12} {'time s':>7} {'no-wait':>8} "
      f"{'waited':>7} {'layers MB':>10} {'on demand MB':>13}")
for n, lsi, layer, secs, share, waited, ahead, fetched in rows:
    print(f"{n:8} {lsi:17} {layer:>12} {secs:>7} {float(share):8.1%} {waited:>7} {ahead:>10} "
          f"{fetched:>13}")
first, last = float(rows[0][3]), float(rows[-1][3])
print("(no-wait: the share of distinct blocks read that never waited on the WAN; layers MB: what\n"
      "the PSA sent ahead in the LSI's delta layers; on demand MB: fetched while the session ran)")
print(f"\nThe new session ran {first / last:.1f}x faster than the first, with "
      f"{float(rows[-1][4]):.1%} of its blocks read without waiting on the WAN.")
PY

step "the catalog"
"$lsictl" lsi list
step "what lsifs learned (lsictl access show, and a heat map)"
"$lsictl" access show -e site-a -v usr-share | head -32
"$lsictl" access heatmap -e site-a -v usr-share -o "$demo/usr-share-heat.svg"
cleanup
echo
echo "Open $demo/usr-share-heat.svg to see which parts of the volume the sessions read."
echo "The store is in $store: LSIFS_STORE=$store $lsictl --help for more."
