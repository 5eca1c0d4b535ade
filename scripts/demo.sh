#!/usr/bin/env bash
# The main job on an embedded default: builds lsifs, makes a store in a local
# folder, creates an extension key, builds a real ext4 image from a real
# directory tree (/usr/share/doc) with mke2fs -d, imports it as a snapshot
# (and again after a change), restores it at extension site-a through an
# lsifs mount under the edge WAN profile (40 ms, 200 Mbit/s), attaches the
# image to a loop device, mounts the ext4 inside, reads real files from it,
# and shows what crossed the WAN; then restores again, now composed by the
# Predictive Snapshot Assembler from what the first session read, and runs
# the same session from its delta layers. Last, the catalog and what was
# learned (hot blocks, a heat map). Everything it mounts is undone on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null

demo=${LSIFS_DEMO_DIR:-$PWD/demo}
store=$demo/store
lsictl=$PWD/build/mount-tools/lsictl
lsifs=$PWD/build/mount-tools/lsifs
mnt=$demo/mnt inner=$demo/inner loopdev="" daemon=""
cleanup() {
  mountpoint -q "$inner" 2>/dev/null && umount "$inner"
  [ -n "$loopdev" ] && losetup -d "$loopdev"
  mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
  [ -n "$daemon" ] && wait "$daemon" 2>/dev/null
  return 0
}
trap cleanup EXIT
if mountpoint -q "$demo/inner" 2>/dev/null; then umount "$demo/inner"; fi
if mountpoint -q "$demo/mnt" 2>/dev/null; then fusermount3 -u "$demo/mnt"; fi
rm -rf "$demo"
mkdir -p "$demo" "$mnt" "$inner"
export LSIFS_STORE=$store

step() { printf '\n== %s\n' "$*"; }

step "create a store"
"$lsictl" init "$store"
step "create the key of extension site-a"
"$lsictl" key create site-a
"$lsictl" key list

step "build a 512 MiB ext4 image from /usr/share/doc"
tree=/usr/share/doc
truncate -s 512M "$demo/docs.img"
mke2fs -q -t ext4 -d "$tree" "$demo/docs.img"
echo "$(du -sh --apparent-size "$tree" | cut -f1) of files in $tree -> $demo/docs.img"

step "import it as snapshot 1 of volume web-docs"
"$lsictl" import web-docs "$demo/docs.img"

step "change one file, import again: only changed blocks are stored"
debugfs -w -R "write /etc/hostname new-file" "$demo/docs.img" >/dev/null 2>&1
"$lsictl" import web-docs "$demo/docs.img"

step "what the store holds"
"$lsictl" snapshots
du -sh "$store/snapshots/web-docs"

# session LSI: mounts the LSI's image at site-a over the WAN model, runs
# the session (walk the tree, read every package's copyright file) with a
# cold page cache, and shows what crossed the WAN.
session() {
  "$lsifs" "$store" "$mnt" -e site-a -f -o origin_latency=40ms,origin_bandwidth=200Mbit \
    2>>"$demo/lsifs.log" &
  daemon=$!
  for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
  ls -l "$mnt" "$mnt/by-id"
  echo "losetup the image, mount the ext4 inside read-only, walk it and read every copyright file:"
  loopdev=$(losetup -r -f --show "$mnt/web-docs.img")
  mount -o ro,noload "$loopdev" "$inner"
  sync; echo 3 >/proc/sys/vm/drop_caches
  time (echo "$(find "$inner" -type f | wc -l) files;" \
    "$(cat "$inner"/*/copyright 2>/dev/null | grep -c "License") lines naming a license")
  echo "what crossed the WAN (live counters in $mnt/.lsifs/$1):"
  sed -n '/^\[session\]/,/^$/p' "$mnt/.lsifs/$1" |
    grep -E "^(blocks_read|from_delta|from_base|origin_requests|origin_bytes|stalled_reads|prefetched|recall|precision)"
  cleanup
  daemon="" loopdev=""
}

step "restore web-docs at site-a: nothing learned yet, so every first read waits on the WAN"
id=$("$lsictl" restore -e site-a -v web-docs)
session "$id"

step "restore again: the PSA composes the LSI from what that session read"
"$lsictl" preassemble -e site-a -v web-docs --explain
id=$("$lsictl" restore -e site-a -v web-docs)
session "$id"

step "the catalog: the LSIs delivered, and store-wide figures"
"$lsictl" lsi list
"$lsictl" stats

step "what lsifs learned from that session (lsictl access show, and a heat map)"
"$lsictl" access show -e site-a -v web-docs | head -32
"$lsictl" access heatmap -e site-a -v web-docs -o "$demo/web-docs-heat.svg"
echo
echo "Open $demo/web-docs-heat.svg to see which parts of the volume the session read."
echo "Done. The store is in $store (LSIFS_STORE=$store lsictl --help for more)."
