#!/usr/bin/env bash
# The README's first command on a small tree, so that it cannot rot: the
# demo runs its five sessions end to end, prints them side by side, and
# leaves nothing mounted or attached behind.
#   demo_smoke.sh BIN_DIR
set -euo pipefail
bin=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/lsifs-demo-smoke.XXXXXX")
cleanup() {
  set +e
  mountpoint -q "$work/demo/inner" && umount "$work/demo/inner"
  for d in $(losetup -a 2>/dev/null | grep "$work" | cut -d: -f1); do losetup -d "$d"; done
  mountpoint -q "$work/demo/mnt" && fusermount3 -u "$work/demo/mnt"
  rm -rf "$work"
}
trap cleanup EXIT
# A small tree with the parts the demo's tasks read.
tree=$work/share
mkdir -p "$tree/doc" "$tree/man/man1"
cp -r /usr/share/common-licenses "$tree/"
for d in $(ls /usr/share/doc | head -40); do cp -r "/usr/share/doc/$d" "$tree/doc/" 2>/dev/null || true; done
for f in $(ls /usr/share/man/man1/*.gz 2>/dev/null | head -40); do cp "$f" "$tree/man/man1/"; done
LSIFS_BIN_DIR=$bin LSIFS_DEMO_DIR=$work/demo LSIFS_DEMO_TREE=$tree \
  bash "$repo/scripts/demo.sh" >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
fail() { echo "demo_smoke: $*"; cat "$work/out.txt"; exit 1; }
rows=$(sed -n '/^== side by side/,/^$/p' "$work/out.txt" | grep -cE '^[1-5] +[0-9a-f]{16} ')
[ "$rows" -eq 5 ] || fail "expected 5 sessions side by side, found $rows"
grep -q "wrote $work/demo/usr-share-heat.svg" "$work/out.txt" || fail "no heat map"
mountpoint -q "$work/demo/mnt" && fail "lsifs is still mounted"
losetup -a | grep -q "$work" && fail "a loop device is still attached"
echo "demo_smoke: five sessions side by side, nothing left mounted"
