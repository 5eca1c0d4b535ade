#!/usr/bin/env bash
# The main job on an embedded default: builds lsifs, makes a store in a local
# folder, creates an extension key, builds a real ext4 image from a real
# directory tree (/usr/share/doc) with mke2fs -d, imports it as a snapshot,
# imports it again after a change, and shows what was stored.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null

demo=${LSIFS_DEMO_DIR:-$PWD/demo}
store=$demo/store
lsictl=$PWD/build/mount-tools/lsictl
rm -rf "$demo"
mkdir -p "$demo"
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
echo
echo "Done. The store is in $store (LSIFS_STORE=$store lsictl --help for more)."
