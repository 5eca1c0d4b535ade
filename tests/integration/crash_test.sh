#!/usr/bin/env bash
# The crash matrix: lsictl killed (SIGKILL) during each operation that
# changes the store (import of a new volume and of a new snapshot, restore:
# assembly and delivery, pre-assembly, drop, eviction, snapshot delete, key
# rotation) at
# every rename, fsync, fdatasync and unlink it makes (strace --inject, one
# case per call, the kill landing before the call runs) and at random
# moments. After each kill, on the store left behind:
#   - it opens: listings work (snapshots, lsi list);
#   - nothing half-made is visible: lsictl verify finds everything intact;
#   - nothing complete is lost: what existed before is still there, except
#     what the operation was removing (gone whole, or there whole);
#   - every leftover is swept at the next open: tmp/ is empty, every layer
#     file is named by a manifest, every data file has its map (or is kept).
# Sampled by default (every sync point, 3 random kills per operation);
# LSIFS_MATRIX=full: 20 random kills per operation.
#   usage: crash_test.sh LSICTL
LSICTL=$1
source "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || { echo "crash_test.sh: needs strace" >&2; exit 1; }
random_kills=3
[ "${LSIFS_MATRIX:-}" = full ] && random_kills=20

BASE=$WORK/base
"$LSICTL" init "$BASE" --block-size 64K >/dev/null 2>&1
"$LSICTL" -s "$BASE" key create site-a >/dev/null
"$LSICTL" -s "$BASE" key create site-b >/dev/null
mkdir -p "$WORK/tree"
cp -r /usr/share/common-licenses "$WORK/tree/"
head -c 3000000 /dev/urandom >"$WORK/tree/random.bin"
make_ext4 "$WORK/fs.img" 24M "$WORK/tree"
first=$("$LSICTL" -s "$BASE" import vol "$WORK/fs.img" 2>/dev/null)
echo changed >"$WORK/tree/changed.txt"
make_ext4 "$WORK/fs2.img" 24M "$WORK/tree"
lsi=$("$LSICTL" -s "$BASE" restore -e site-a -v vol 2>/dev/null)
spare=$("$LSICTL" -s "$BASE" preassemble -e site-b -v vol --strategy none 2>/dev/null)

# What every case starts from, and what must survive it.
snapshots_before() { ls "$1/snapshots/vol/" | grep '\.snap$' | sort; }
lsis_before() { ls "$1/lsi/" | grep '\.lsi$' | sort; }

S=$WORK/store
reset_store() { rm -rf "$S" && cp -a "$BASE" "$S"; }

# check_store CASE [GONE_ID]: the invariants after a kill. GONE_ID is what
# the operation removes (it may be there whole, or gone whole).
check_store() {
  local name=$1 gone=${2:-} problems=""
  "$LSICTL" -s "$S" snapshots >/dev/null 2>&1 || problems+=" snapshots-fails"
  "$LSICTL" -s "$S" lsi list >/dev/null 2>&1 || problems+=" lsi-list-fails"
  "$LSICTL" -s "$S" verify >"$WORK/verify.out" 2>&1 || problems+=" verify:$(grep -m1 DAMAGED "$WORK/verify.out" | tr -s ' ')"
  for f in $(snapshots_before "$BASE") $(lsis_before "$BASE"); do
    [[ " $gone " == *" ${f%.*} "* ]] && continue
    [[ " $gone " == *" every-lsi "* ]] && [[ $f == *.lsi ]] && continue
    [ -e "$S/snapshots/vol/$f" ] || [ -e "$S/lsi/$f" ] || problems+=" lost:$f"
  done
  # The next open sweeps what the kill left.
  "$LSICTL" -s "$S" gc >/dev/null 2>&1 || problems+=" gc-fails"
  [ -z "$(ls -A "$S/tmp")" ] || problems+=" tmp-not-swept:$(ls "$S/tmp" | head -3 | tr '\n' ,)"
  local named
  named=$("$LSICTL" -s "$S" --json lsi list 2>/dev/null | python3 -c '
import json, subprocess, sys
ids = [e["lsi"] for e in json.load(sys.stdin)]
for i in ids:
    out = subprocess.run([sys.argv[1], "-s", sys.argv[2], "--json", "lsi", "show", i],
                         capture_output=True, text=True).stdout
    try:
        for l in json.loads(out).get("layer_list", []): print(l["layer"])
    except ValueError:
        pass' "$LSICTL" "$S")
  for layer in $(ls "$S/layers"); do
    grep -q "${layer%.layer}" <<<"$named" || problems+=" orphan-layer:$layer"
  done
  for data in $(ls "$S/snapshots/vol" | grep '\.data$'); do
    local id=${data%.data}
    [ -e "$S/snapshots/vol/$id.snap" ] || [ -e "$S/snapshots/vol/$id.kept" ] ||
      problems+=" orphan-data:$data"
  done
  # A rotation killed midway finishes when run again, and then only the
  # new key is needed.
  if [[ $name == "key rotate"* ]]; then
    "$LSICTL" -s "$S" key rotate site-a >/dev/null 2>&1 || problems+=" rotate-does-not-resume"
    [ ! -e "$S/keys/site-a.key.next" ] || problems+=" next-key-left"
    "$LSICTL" -s "$S" verify >"$WORK/verify.out" 2>&1 ||
      problems+=" after-resume:$(grep -m1 DAMAGED "$WORK/verify.out" | tr -s ' ')"
  fi
  CASES=$((CASES + 1))
  if [ -n "$problems" ]; then fail "$name:$problems"; fi
}

# The operations, each a command line for lsictl on $S, and what it removes.
ops=(
  "import vol2 $WORK/fs.img"
  "import vol $WORK/fs2.img"
  "restore -e site-b -v vol"
  "preassemble -e site-a -v vol --priority low --strategy full"
  "lsi drop $spare"
  "snapshot delete vol $first"
  "config set lsi_cap 1;gc"
  "key rotate site-a"
)
gone_of() {
  case "$1" in
    "lsi drop"*) echo "$spare" ;;
    "snapshot delete"*) echo "$first every-lsi" ;;  # both LSIs stand on it
    *gc) echo every-lsi ;;
  esac
}
run_op() { # run_op OP [PREFIX...]: runs the operation's last command under PREFIX
  local op=$1; shift
  if [[ $op == *";"* ]]; then
    "$LSICTL" -s "$S" ${op%%;*} >/dev/null 2>&1
    op=${op##*;}
  fi
  # LeakSanitizer cannot run under ptrace (scripts/sanitize.sh): the other
  # sanitizers still do.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$@" "$LSICTL" -s "$S" $op \
    >/dev/null 2>&1
}

CASES=0
SYSCALLS=rename,renameat,renameat2,fsync,fdatasync,unlink,unlinkat
for op in "${ops[@]}"; do
  gone=$(gone_of "$op")
  # Every sync point the operation reaches, one case each.
  reset_store
  run_op "$op" strace -f -qq -o "$WORK/trace" -e trace=$SYSCALLS
  for call in $(awk '{print $2}' "$WORK/trace" | cut -d'(' -f1 | sort -u); do
    count=$(awk '{print $2}' "$WORK/trace" | cut -d'(' -f1 | grep -cx "$call")
    for n in $(seq "$count"); do
      reset_store
      run_op "$op" strace -f -qq -o /dev/null -e trace=$call -e inject=$call:signal=KILL:when=$n || true
      check_store "$op: killed at $call #$n" "$gone"
    done
  done
  # And at random moments.
  for _ in $(seq "$random_kills"); do
    reset_store
    if [[ $op == *";"* ]]; then "$LSICTL" -s "$S" ${op%%;*} >/dev/null 2>&1; fi
    last=${op##*;}
    "$LSICTL" -s "$S" $last >/dev/null 2>&1 &
    pid=$!
    sleep "0.$(printf '%03d' $((RANDOM % 400)))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    check_store "$op: killed at random" "$gone"
  done
done
echo "crash matrix: $CASES kill points tried"
finish
