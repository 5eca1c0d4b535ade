#!/usr/bin/env bash
# Makes tests/data/store-format1.tar.gz: a small store written by the lsifs
# of commit 3d3687a (format 1 stores: snapshot map and data v1, layer v1,
# manifest v3, key files lsifs-key-1, deliveries v1, access database
# format 1), kept so that every later lsifs is tested on a store its
# predecessor wrote (tests/core/format_test.cc). Not rerun by the tests:
# rerunning it with a newer lsifs would write the newer format.
#
#   usage: make_store_format1.sh LSICTL LSIFS OUT.tar.gz
set -euo pipefail
lsictl=$1 lsifs=$2 out=$3
work=$(mktemp -d /var/tmp/store-format1.XXXXXX)
mnt=$work/mnt
cleanup() {
  mountpoint -q "$mnt" && fusermount3 -u "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
export LSIFS_STORE=$work/store

# Two snapshots of a 128 KiB volume of 4 KiB blocks: some blocks zero, the
# second snapshot changes a few blocks of the first.
python3 - "$work" <<'PY'
import random, sys
r = random.Random(1)
blocks = []
for i in range(32):
    blocks.append(bytes(4096) if i % 5 == 3 else bytes(r.getrandbits(8) for _ in range(64)) * 64)
open(sys.argv[1] + "/one.img", "wb").write(b"".join(blocks))
for i in (1, 7, 20):
    blocks[i] = bytes(r.getrandbits(8) for _ in range(64)) * 64
blocks[3] = b"\x5a" * 4096
open(sys.argv[1] + "/two.img", "wb").write(b"".join(blocks))
PY

"$lsictl" init "$LSIFS_STORE" --block-size 4K --lsi-cap 64M --free-floor 1M >/dev/null
"$lsictl" key create site >/dev/null
one=$("$lsictl" import disk "$work/one.img")
two=$("$lsictl" import disk "$work/two.img")
first=$("$lsictl" restore -e site -v disk --snapshot "$one" 2>/dev/null)
# One recorded session of reads, so that the access database holds a model.
"$lsifs" "$LSIFS_STORE" "$mnt" -e site -o preassemble=off
dd if="$mnt/by-id/$first.img" of=/dev/null bs=4096 skip=8 count=8 status=none
dd if="$mnt/by-id/$first.img" of=/dev/null bs=4096 skip=20 count=4 status=none
fusermount3 -u "$mnt"
while pgrep -f "lsifs $LSIFS_STORE" >/dev/null; do sleep 0.1; done
lsi=$("$lsictl" restore -e site -v disk 2>/dev/null)
printf 'snapshot_one %s\nsnapshot_two %s\nlsi_first %s\nlsi_latest %s\n' "$one" "$two" "$first" "$lsi" >"$work/ids"
tar -C "$work" -S -czf "$out" store one.img two.img ids
