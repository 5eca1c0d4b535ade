#!/usr/bin/env bash
# The daemon's scheduler end to end, with real mounts of one store:
# pre-assembly before anyone asks (after a session ends, after an import),
# a second mount's sessions reaching the database through the first, the
# assembly queue listed and cancelled, and kill -9 of lsifs and of lsictl
# in the middle of an assembly leaving nothing half-made.
LSICTL=$1
LSIFS=$2
source "$(dirname "$0")/lib.sh"

S=$WORK/store
export LSIFS_STORE=$S
"$LSICTL" init "$S" --block-size 64K >/dev/null
"$LSICTL" key create site-a >/dev/null
"$LSICTL" key create site-b >/dev/null
"$LSICTL" key create site-c >/dev/null  # no LSIs: its assemblies fetch everything
mkdir -p "$WORK/tree"
cp -r /usr/share/common-licenses /etc/apt "$WORK/tree/"
head -c 12000000 /dev/urandom >"$WORK/tree/random.bin"
make_ext4 "$WORK/fs.img" 64M "$WORK/tree"
"$LSICTL" import vol "$WORK/fs.img" >/dev/null 2>&1

# mount_lsifs EXT MOUNTPOINT OPTIONS LOG: sets MOUNT_PID.
mount_lsifs() {
  mkdir -p "$2"
  "$LSIFS" "$S" "$2" -e "$1" -f -o "$3" >"$4" 2>&1 &
  MOUNT_PID=$!
  on_exit "fusermount3 -u -z '$2' 2>/dev/null; kill -9 $MOUNT_PID 2>/dev/null"
  for _ in $(seq 100); do
    mountpoint -q "$2" && return 0
    sleep 0.1
  done
  echo "lsifs did not mount: $(cat "$4")" >&2
  return 1
}
unmount_lsifs() {  # MOUNTPOINT PID
  fusermount3 -u "$1" 2>/dev/null || fusermount3 -u -z "$1"
  wait "$2" 2>/dev/null || true
}
wait_for() {  # SECONDS COMMAND...: polls until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}
lsi_json() { "$LSICTL" lsi list --json; }
# assembled_for EXT SNAPSHOT: an assembled LSI of EXT on SNAPSHOT learned
# from at least one session.
assembled_for() {
  lsi_json | python3 -c "
import json, sys
l = json.load(sys.stdin)
sys.exit(0 if any(e['state'] == 'assembled' and e['extension'] == '$1' and e['snapshot'] == '$2'
                  and e['model_sessions'] >= 1 for e in l) else 1)"
}
sessions_of() {  # EXT: sessions recorded of vol
  "$LSICTL" access show -e "$1" -v vol --json | python3 -c "
import json, sys; print(len(json.load(sys.stdin)['sessions']))"
}
latest() { "$LSICTL" snapshots vol --json | python3 -c "import json,sys; print(json.load(sys.stdin)[-1]['snapshot'])"; }
export LSICTL S
export -f lsi_json sessions_of
# A session here is a read of the image's first blocks in order: the mounts
# learn from such reads (sequential=learn), which by default are taken for a
# copy rather than a restore.
read_image() { dd if="$1" of=/dev/null bs=64K count=300 status=none; }

# --- pre-assembly before it is asked for --------------------------------
mount_lsifs site-a "$WORK/m1" "session_idle=300ms,sequential=learn,origin_latency=2ms" "$WORK/a.log"
A=$MOUNT_PID
"$LSICTL" restore -e site-a -v vol >/dev/null
read_image "$WORK/m1/vol.img"
snap1=$(latest)
check "a low pre-assembly follows the end of a session" wait_for 20 assembled_for site-a "$snap1"
check "the next restore finds it waiting" bash -c "'$LSICTL' restore -e site-a -v vol --json |
  python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"reused\"] and r[\"model_sessions\"] >= 1, r'"
"$LSICTL" import vol "$WORK/fs.img" >/dev/null 2>&1
snap2=$(latest)
check "an import is pre-assembled for the extensions with history" wait_for 20 assembled_for site-a "$snap2"
check "the queue is empty when all is done" wait_for 10 bash -c "[ \"\$('$LSICTL' assemblies --json)\" = '[]' ]"
check "assemblies (text) says so" bash -c "'$LSICTL' assemblies | grep -q 'no assembly'"

# --- a second mount of the store ----------------------------------------
mount_lsifs site-b "$WORK/m2" "session_idle=300ms,sequential=learn" "$WORK/b.log"
B=$MOUNT_PID
check "the second mount says whom it defers to" grep -q "pid $A) holds this store's database" "$WORK/b.log"
"$LSICTL" restore -e site-b -v vol >/dev/null
sleep 1.2  # the second mount sees its delivery (forced refresh every second)
read_image "$WORK/m2/vol.img"
check "its session reaches the database through the first" wait_for 20 bash -c "[ \"\$(sessions_of site-b)\" = 1 ]"
unmount_lsifs "$WORK/m2" "$B"
unmount_lsifs "$WORK/m1" "$A"

# --- the queue: listed, cancelled; kill -9 leaves nothing half-made -----
state() {  # what must not change: LSIs, layer files, and no leftovers
  echo "$(lsi_json | python3 -c 'import json,sys; print(sorted(e["lsi"] for e in json.load(sys.stdin)))')"
  ls "$S/layers" | sort | tr '\n' ' '
}
running_id() {
  "$LSICTL" assemblies --json | python3 -c "
import json, sys
l = [a for a in json.load(sys.stdin) if a['state'] == 'running' and a['done_bytes'] > 0]
sys.exit(1) if not l else print(l[0]['id'])"
}
export -f state running_id
slow="origin_bandwidth=4Mbit,session_idle=300ms,sequential=learn"
mount_lsifs site-a "$WORK/m1" "$slow" "$WORK/a2.log"
A=$MOUNT_PID
before=$(state)
"$LSICTL" preassemble -e site-c -v vol --strategy full --priority low >"$WORK/p.out" 2>&1 &
P=$!
check "a running assembly is listed with its progress" wait_for 20 bash -c "running_id >/dev/null"
id=$(running_id || echo none)
check "assemblies --json has its fields" bash -c "'$LSICTL' assemblies --json | python3 -c '
import json,sys; a=json.load(sys.stdin)[0]
assert a[\"priority\"]==\"low\" and a[\"strategy\"]==\"full\" and a[\"reason\"]==\"preassemble\" and a[\"total_bytes\"]>0, a'"
check "cancel it" "$LSICTL" assemblies cancel "$id"
rc=0; wait $P || rc=$?
check "the waiting preassemble fails, saying cancelled" bash -c "[ $rc -ne 0 ] && grep -q cancelled '$WORK/p.out'"
check "a cancelled assembly leaves nothing" bash -c "[ \"\$(state)\" = \"$(printf '%s' "$before")\" ]"
check "cancel of an unknown id" expect_fail 1 "no queued or running assembly" "$LSICTL" assemblies cancel 999

"$LSICTL" preassemble -e site-c -v vol --strategy full --priority low >/dev/null 2>&1 &
P=$!
check "a second full assembly runs" wait_for 20 bash -c "running_id >/dev/null"
kill -9 "$A"
wait "$P" 2>/dev/null || true
fusermount3 -u -z "$WORK/m1" 2>/dev/null || true
mount_lsifs site-a "$WORK/m1" "$slow" "$WORK/a3.log"
A=$MOUNT_PID
check "kill -9 of lsifs mid-assembly: nothing half-made, nothing lost" bash -c "[ \"\$(state)\" = \"$(printf '%s' "$before")\" ]"
check "and no claim or temporary file is left" bash -c "! ls '$S/tmp' | grep -q ."
unmount_lsifs "$WORK/m1" "$A"

# lsictl alone (no daemon) assembles in-process: kill -9 it midway.
"$LSICTL" preassemble -e site-c -v vol --strategy full --origin-bandwidth 4Mbit >"$WORK/alone.out" 2>&1 &
P=$!
sleep 1.5
check "lsictl alone is still assembling" kill -0 "$P" || { cat "$WORK/alone.out" >&2; }
kill -9 "$P"
wait "$P" 2>/dev/null || true
"$LSICTL" gc >/dev/null
check "kill -9 of lsictl mid-assembly: swept, nothing half-made" bash -c "[ \"\$(state)\" = \"$(printf '%s' "$before")\" ] && ! ls '$S/tmp' | grep -q ."
check "the volume still restores" "$LSICTL" restore -e site-a -v vol
finish
