#!/usr/bin/env bash
# A site restores, mounts and reads a volume from a region over a real
# network: lsid in one network namespace, lsifs --region in another, joined
# by a veth pair, mutual TLS 1.3 between them. The site holds no provider
# key; losetup and the ext4 inside read what the snapshot holds.
# Usage: site_test.sh BIN_DIR
BIN=$1
source "$(dirname "$0")/lib.sh"
LSICTL=$BIN/lsictl
[ "$(id -u)" -eq 0 ] || { echo "FAIL: site_test.sh makes network namespaces: run as root" >&2; exit 1; }

REGION_NS=lsifs-reg-$$
SITE_NS=lsifs-site-$$
ip netns add "$REGION_NS"
on_exit "ip netns del $REGION_NS"
ip netns add "$SITE_NS"
on_exit "ip netns del $SITE_NS"
ip link add "lr$$" netns "$REGION_NS" type veth peer name "ls$$" netns "$SITE_NS"
ip -n "$REGION_NS" addr add 10.79.0.1/24 dev "lr$$"
ip -n "$SITE_NS" addr add 10.79.0.2/24 dev "ls$$"
for ns in "$REGION_NS" "$SITE_NS"; do ip -n "$ns" link set lo up; done
ip -n "$REGION_NS" link set "lr$$" up
ip -n "$SITE_NS" link set "ls$$" up
# Both sides' programs change only their network namespace (nsenter --net):
# the site's FUSE mount is seen here, and no mount namespace of their own
# (ip netns exec makes one) keeps a copy of it alive after its unmount.
# (Arrays, not functions: a program started with & is then $! itself.)
IN_SITE=(nsenter --net="/run/netns/$SITE_NS")
IN_REGION=(nsenter --net="/run/netns/$REGION_NS")
in_site() { "${IN_SITE[@]}" "$@"; }

start_lsid_first() {
  "${IN_REGION[@]}" "$BIN/lsid" "$S" --listen 10.79.0.1:8443 2>>"$WORK/lsid.log" &
  LSID_PID=$!
  on_exit "kill \$LSID_PID 2>/dev/null; wait \$LSID_PID 2>/dev/null"
  for _ in $(seq 100); do grep -q serving "$WORK/lsid.log" 2>/dev/null && break; sleep 0.1; done
}
# The region: a real ext4 image of a real tree, a site's key and certificate.
S=$WORK/region
"$LSICTL" init "$S" >/dev/null
mkdir -p "$WORK/tree"
cp -r /usr/share/common-licenses /etc/apt "$WORK/tree/"
head -c 6000000 /dev/urandom >"$WORK/tree/random.bin"
make_ext4 "$WORK/fs.img" 48M "$WORK/tree"
"$LSICTL" -s "$S" import vol "$WORK/fs.img" >/dev/null 2>&1
"$LSICTL" -s "$S" key create site-a >/dev/null
"$LSICTL" -s "$S" ca init --host 10.79.0.1 >/dev/null
# What the operator carries to the site: the TLS material and the key.
SITE=$WORK/site
mkdir -p "$SITE"
"$LSICTL" -s "$S" cert issue site-a --out "$SITE/tls" >/dev/null
mkdir -p "$SITE/keys"
cp -p "$S/keys/site-a.key" "$SITE/keys/"
start_lsid_first

URL=https://10.79.0.1:8443

# A learned history at the region, so that the restore has layers to pull.
region_curl() {
  in_site curl -sS --max-time 60 --cacert "$SITE/tls/ca.crt" --cert "$SITE/tls/site-a.crt" \
    --key "$SITE/tls/site-a.key" "$@"
}
# lsictl --region: a site asks the region as its certificate's extension
# (the TLS material from SITE_DIR/tls); the LSI's id on stdout.
site_lsictl() { in_site "$LSICTL" --region "$URL" -s "$SITE" "$@"; }
restore() { site_lsictl restore -e site-a -v vol 2>>"$WORK/lsictl.log"; }
FIRST=$(restore)
check "the region restores for the site (lsictl --region)" test ${#FIRST} -eq 16
site_lsictl lsi list --json >"$WORK/lsis.json" 2>>"$WORK/lsictl.log" || true
check "lsictl --region lsi list shows the site's LSI" grep -q "$FIRST" "$WORK/lsis.json"
rc=0
site_lsictl import vol2 "$WORK/fs.img" 2>"$WORK/refused.txt" || rc=$?
check "lsictl --region refuses what is the region's (import): usage error" test "$rc" -eq 2
check "... and says where to run it" grep -q "region's host" "$WORK/refused.txt"
rc=0
site_lsictl --cert "$SITE/tls/site-a.crt" --key "$SITE/tls/site-a.key" restore -e site-b -v vol \
  2>"$WORK/refused.txt" || rc=$?
check "lsictl --region -e another extension than the certificate's fails" test "$rc" -eq 1
check "... naming the certificate's" grep -q "extension 'site-a', not of 'site-b'" "$WORK/refused.txt"
# Two sessions of site-a recorded at the region (a mount there defers to
# lsid, which holds the database), so that the next restore is predicted.
RM=$WORK/region-mnt
mkdir -p "$RM"
"$BIN/lsifs" "$S" "$RM" -e site-a -f -o session_idle=300ms,preassemble=off >"$WORK/region-lsifs.log" 2>&1 &
RM_PID=$!
on_exit "fusermount3 -u -z '$RM' 2>/dev/null; kill $RM_PID 2>/dev/null"
for _ in $(seq 100); do [ -e "$RM/vol.img" ] && break; sleep 0.1; done
sessions() {
  "$LSICTL" -s "$S" access show -e site-a -v vol --json |
    python3 -c 'import json,sys; print(sum(x["state"] == "ended" for x in json.load(sys.stdin)["sessions"]))'
}
# Two present blocks far apart (the kernel's readahead brings the next few
# MiB along; absent blocks read as zeros and teach nothing).
# And two more, near the end, that no session reads: for the faults.
read -r P1 P2 F1 F2 < <(region_curl "$URL/v1/volumes/vol/snapshots/latest/present" | python3 -c '
import struct, sys
data = sys.stdin.buffer.read()
p = struct.unpack("<%dQ" % (len(data) // 8), data)
print(p[len(p) // 5], p[4 * len(p) // 5], p[-1], p[-3])')
for n in 1 2; do
  # A restore reads part of the image, not all of it in order (a copy);
  # each session other blocks (what the page cache holds is not read again).
  dd if="$RM/vol.img" of=/dev/null bs=64K skip=$([ $n = 1 ] && echo "$P1" || echo "$P2") count=4 \
    status=none
  for _ in $(seq 50); do [ "$(sessions)" -ge $n ] && break; sleep 0.2; done
done
check "two sessions were learned at the region" test "$(sessions)" -ge 2
fusermount3 -u "$RM"
wait "$RM_PID" 2>/dev/null || true
LSI=$(restore)
check "the next restore is a new, predicted LSI" test ${#LSI} -eq 16 -a "$LSI" != "$FIRST"

M=$WORK/mnt
mkdir -p "$M"
mount_site() {  # mount_site [URL]: the site's lsifs, of the region at URL ($URL)
  "${IN_SITE[@]}" "$BIN/lsifs" --region "${1:-$URL}" "$SITE" "$M" -e site-a -f \
    -o session_idle=500ms,region_timeout=1s >>"$WORK/lsifs.log" 2>&1 &
  LSIFS_PID=$!
  on_exit "fusermount3 -u -z '$M' 2>/dev/null; kill $LSIFS_PID 2>/dev/null; wait $LSIFS_PID 2>/dev/null"
  for _ in $(seq 100); do mountpoint -q "$M" && break; sleep 0.1; done
}
start_lsid() {
  "${IN_REGION[@]}" "$BIN/lsid" "$S" --listen 10.79.0.1:8443 2>>"$WORK/lsid.log" &
  LSID_PID=$!
  on_exit "kill $LSID_PID 2>/dev/null; wait $LSID_PID 2>/dev/null"
  for _ in $(seq 100); do
    [ "$(grep -c serving "$WORK/lsid.log")" -ge "$1" ] && break
    sleep 0.1
  done
}
# read_block N: one block of the image (each fault below reads blocks never
# read before: no page cache in the way).
read_block() { dd if="$M/vol.img" of=/dev/null bs=64K skip="$1" count=1 status=none; }
read_fails() { ! read_block "$1" 2>/dev/null; }
mount_site
check "the site mounts from the region" mountpoint -q "$M"
check "the site holds no provider key" test ! -e "$SITE/provider.key"
for _ in $(seq 100); do [ -e "$M/vol.img" ] && break; sleep 0.1; done
check "the delivered LSI appears once pulled" test -e "$M/vol.img"
# A restore session at the site (part of the image: a whole-image read in
# order is a copy, not learned from) reaches the region when it ends (500 ms
# idle), and the region's model learns from it.
dd if="$M/vol.img" of=/dev/null bs=64K skip="$P1" count=4 status=none
site_sessions() {
  "$LSICTL" -s "$S" access show -e site-a -v vol --json | python3 -c '
import json, sys
print(sum(x["state"] == "ended" and x["lsi"] == sys.argv[1] for x in json.load(sys.stdin)["sessions"]))' "$LSI"
}
for _ in $(seq 100); do [ "$(site_sessions)" -ge 1 ] && break; sleep 0.2; done
check "the site's session reached the region's database" test "$(site_sessions)" -ge 1
learned=$("$LSICTL" -s "$S" access show -e site-a -v vol --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["model"]["sessions"])')
check "the region's model, which pre-assembly plans from, has learned it (3 sessions)" \
  test "$learned" -ge 3

check "its image is byte-identical to the snapshot" cmp "$M/vol.img" "$WORK/fs.img"

LOOP=$(losetup -r -f --show "$M/vol.img")
on_exit "losetup -d $LOOP 2>/dev/null"
mkdir -p "$WORK/ext4"
mount -o ro,noload "$LOOP" "$WORK/ext4"
on_exit "umount '$WORK/ext4' 2>/dev/null"
check "the ext4 inside reads the tree" diff -r -x lost+found "$WORK/tree" "$WORK/ext4"
umount "$WORK/ext4"
losetup -d "$LOOP"
check "the site's copy of the manifest is there" test -e "$SITE/lsi/$LSI.lsi"
layers=$(region_curl "$URL/v1/lsis/$LSI" |
  python3 -c 'import json,sys; print(" ".join(l["layer"] for l in json.load(sys.stdin)["layer_list"]))')
pulled_all() {
  for l in $layers; do [ -e "$SITE/layers/$l.layer" ] || return 1; done
}
for _ in $(seq 100); do pulled_all && break; sleep 0.1; done
check "every layer of the LSI was pulled ($(echo $layers | wc -w))" pulled_all
check "the LSI has layers to pull" test -n "$layers"
check "lsifs says it serves from the region" grep -q "from region $URL" "$WORK/lsifs.log"

fusermount3 -u "$M"
rc=0
wait "$LSIFS_PID" || rc=$?
check "the site unmounts cleanly" test "$rc" -eq 0

# fstab's way: mount.lsifs with region= (lsifs found through PATH).
SRC=$(cd "$(dirname "$0")/../.." && pwd)
in_site env PATH="$BIN:$PATH" sh "$SRC/mount-tools/mount.lsifs" "$SITE" "$M" \
  -o "ext=site-a,region=$URL,_netdev,nofail,session_idle=500ms" 2>>"$WORK/lsifs.log"
on_exit "fusermount3 -u -z '$M' 2>/dev/null"
check "mount.lsifs -o region= mounts the site" mountpoint -q "$M"
for _ in $(seq 50); do [ -e "$M/vol.img" ] && break; sleep 0.1; done
check "... and serves its image" test -e "$M/vol.img"
check "... from the region" bash -c "'$LSICTL' status '$M' | grep -q 'region:'"
daemon=$(pgrep -f "lsifs --region $URL $SITE $M" | head -1)
check "... run as lsifs --region URL SITE_DIR MOUNTPOINT" test -n "$daemon"
fusermount3 -u "$M"
for _ in $(seq 50); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
check "... and its lsifs stops at unmount" bash -c "! kill -0 '$daemon' 2>/dev/null"

# Faults. The region down when the site mounts: the mount works on what it
# holds (the layers, the spill); a block never fetched fails with EIO,
# within a bounded time, and the outage is logged once. Back: it is served.
kill "$LSID_PID"; wait "$LSID_PID" 2>/dev/null || true
# The whole image was read above: forget the spill, so that only the
# pulled layer (P1 among its blocks) is held here.
rm -f "$SITE/run/$LSI.site-a.spill"
mount_site
check "with the region down, the site mounts" mountpoint -q "$M"
check "... shows what was delivered" test -e "$M/vol.img"
# What was read before comes from the spill, not the page cache.
echo 1 >/proc/sys/vm/drop_caches
check "... reads what it holds (its layer)" read_block "$P1"
started=$SECONDS
check "... fails a block never fetched (EIO)" read_fails "$F1"
check "... within a bounded time" test $((SECONDS - started)) -le 15
check "... again, without hanging" read_fails "$F1"
check "the outage is logged once" test "$(grep -c 'unreachable:' "$WORK/lsifs.log")" -eq 1
start_lsid 2
check "the region back, the block is served" read_block "$F1"
check "its return is logged" grep -q "answers again" "$WORK/lsifs.log"
check "lsictl status shows the region's figures" \
  bash -c "'$LSICTL' status '$M' | grep -q 'region:.*answering'"
# A hung region (stopped, its connections open) is a timeout, not a hang.
kill -STOP "$LSID_PID"
started=$SECONDS
check "a hung region fails a read (EIO)" read_fails "$F2"
check "... within a bounded time" test $((SECONDS - started)) -le 15
kill -CONT "$LSID_PID"
check "the region answering again, the read works" read_block "$F2"
fusermount3 -u "$M"
for _ in $(seq 100); do kill -0 "$LSIFS_PID" 2>/dev/null || break; sleep 0.1; done
check "after the faults, the site's lsifs stops at unmount" bash -c "! kill -0 $LSIFS_PID 2>/dev/null"

# verify_reads SECONDS SEED [PAUSE]: reads 64 KiB blocks of the image in a
# seeded order for SECONDS, PAUSE seconds apart; every read that works must
# be the snapshot's bytes. Prints "OK EIO WRONG" counts.
verify_reads() {
  python3 - "$M/vol.img" "$WORK/fs.img" "$1" "$2" "${3:-0}" <<'PY'
import errno, os, random, sys, time
img, ref, seconds, seed, pause = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
bs = 65536
order = list(range(os.path.getsize(ref) // bs))
random.Random(seed).shuffle(order)
fi, fr = os.open(img, os.O_RDONLY), os.open(ref, os.O_RDONLY)
ok = eio = wrong = 0
end = time.time() + seconds
for b in order:
    if time.time() > end:
        break
    try:
        got = os.pread(fi, bs, b * bs)
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        eio += 1
        continue
    if got == os.pread(fr, bs, b * bs):
        ok += 1
    else:
        wrong += 1
    time.sleep(pause)
print(ok, eio, wrong)
PY
}
status_field() { "$LSICTL" status "$M" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['site']['$1'])"; }
# Start each fault from the base: no spill, no page cache.
fresh_mount() {
  rm -f "$SITE/run/$LSI.site-a.spill"
  echo 1 >/proc/sys/vm/drop_caches
  mount_site "$@"
  for _ in $(seq 50); do [ -e "$M/vol.img" ] && break; sleep 0.1; done
}
unmount_site() {
  fusermount3 -u "$M"
  wait "$LSIFS_PID" 2>/dev/null || true
}

# The region restarts mid-session (killed, started again): reads go on,
# those that wait through the restart fail with EIO at worst, no byte is
# ever wrong, and the session still reaches the region.
fresh_mount
before=$(site_sessions)
# Paced (the image's 768 blocks over about 4 s), so that reads cross the
# restart.
verify_reads 6 1 0.005 >"$WORK/reads.txt" &
reader=$!
sleep 1
kill -9 "$LSID_PID"
wait "$LSID_PID" 2>/dev/null || true
start_lsid 3
wait "$reader"
read -r ok eio wrong <"$WORK/reads.txt"
check "region restarted mid-session: no wrong byte ($ok read, $eio EIO)" test "$wrong" -eq 0 -a "$ok" -gt 0
check "... reads met the restart ($(status_field region_retries) requests tried again)" \
  test "$(status_field region_retries)" -gt 0
check "... and after it the whole image is the snapshot's" cmp "$M/vol.img" "$WORK/fs.img"
for _ in $(seq 100); do [ "$(site_sessions)" -gt "$before" ] && break; sleep 0.2; done
check "... and the session reached the restarted region" test "$(site_sessions)" -gt "$before"
unmount_site

# A slow region: the link held to 8 Mbit/s (tc tbf) while region_timeout
# is 1 s. The layer, pulled again, comes in 4 MiB ranges that each take
# seconds: bytes keep moving, so nothing times out; reads are right.
rm -f "$SITE"/layers/*.layer
tc -n "$REGION_NS" qdisc add dev "lr$$" root tbf rate 8mbit burst 32kb latency 200ms
fresh_mount
read -r ok eio wrong < <(verify_reads 3 2)
check "a slow region: reads are right ($ok read, $eio EIO)" test "$wrong" -eq 0 -a "$eio" -eq 0 -a "$ok" -gt 0
for _ in $(seq 300); do pulled_all && break; sleep 0.2; done
check "... and the layer is pulled again over it ($(du -ch "$SITE"/layers/*.layer 2>/dev/null | tail -1 | cut -f1))" pulled_all
check "... without a timeout" test "$(status_field region_failures)" -eq 0
unmount_site
tc -n "$REGION_NS" qdisc del dev "lr$$" root

# Connections dropped mid-answer: a relay in the region's namespace cuts
# every other connection after 100 KB of answer. Requests are tried again
# on another connection; every byte read is the snapshot's.
"${IN_REGION[@]}" python3 "$(dirname "$0")/cutting_relay.py" 10.79.0.1:9443 10.79.0.1:8443 100000 \
  >"$WORK/relay.log" 2>&1 &
RELAY_PID=$!
on_exit "kill $RELAY_PID 2>/dev/null"
for _ in $(seq 50); do grep -q relaying "$WORK/relay.log" && break; sleep 0.1; done
fresh_mount https://10.79.0.1:9443
check "connections dropped mid-answer: the whole image is the snapshot's" cmp "$M/vol.img" "$WORK/fs.img"
check "... the drops were tried again ($(status_field region_retries) retries)" \
  test "$(status_field region_retries)" -gt 0
check "... and none failed a read" test "$(status_field region_failures)" -eq 0
unmount_site
kill "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
check "... the relay did cut connections ($(tail -1 "$WORK/relay.log"))" grep -qE "^cut [1-9]" "$WORK/relay.log"
finish
