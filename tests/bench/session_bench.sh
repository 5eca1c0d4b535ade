#!/usr/bin/env bash
# B3 (BENCHMARKS.md): varied restore sessions of real programs on a real
# volume, every strategy side by side on the same held-out sessions.
#
#   session_bench.sh BIN_DIR [--tree rootfs|usr-share] [--history 5]
#                    [--held-out 8] [--profile edge] [--json FILE] [--svg FILE]
#                    [--smoke | --quick] [--network]
#
# The volume is an ext4 image of a Debian root filesystem made with
# debootstrap (python3, perl, sqlite3 and more), built once and cached in
# $LSIFS_BENCH_CACHE (default /var/cache/lsifs-bench); or, with --tree
# usr-share, of this machine's /usr/share (a large real tree). Each session
# restores the volume, attaches it with losetup -r, mounts the ext4
# read-only, drops the page cache and runs a fixed core of tasks (what every
# start does) plus a seeded random half of the varied tasks in seeded random
# order; then unmounts. Session k is predicted from sessions < k only: the
# first --history sessions build history, each later one is held out and run
# every way on the same link:
#   lazy       base-only LSI: every first read of a block waits on the origin
#   local      every present block in delta layers (a fully local LSI)
#   full       full copy: the time to assemble that LSI over the link (every
#              present block fetched first), plus the local session
#   replay     exactly the blocks the previous session read, in its order
#   psa        the LSI the predictor composed from sessions < k, no expansion
#   psa+exp    the same LSI with read-time expansion (this run is recorded:
#              history is one run per session)
#   oracle     exactly the blocks this session read, in its order (made
#              after the psa+exp run recorded them)
# Per strategy: session time and WAN bytes (delta layer bytes plus bytes
# fetched during the session) as ratios to the oracle's, no_wait_share,
# recall and precision of the pre-assembled layers: medians over the
# held-out sessions. Then a new snapshot is imported and pre-assembled, to
# show what it fetches.
# --smoke: a tiny tree instead of the root filesystem, no WAN model, one
# held-out session: seconds, so that the harness cannot rot. --quick: 3
# sessions of history and 3 held out (scripts/bench.sh --quick).
# --network: the two-site form over a real network (tests/bench/network.sh):
# lsid holds the store and its database in one network namespace; the
# sessions run on a site's lsifs --region in another, over TCP and TLS 1.3
# on a veth pair that tc holds to the profile's bandwidth, the profile's
# latency from the site's link model. Restores are lsictl --region from the
# site; each LSI's layers are pulled to the site before its session (the
# wait is reported, not counted in the session), and a recorded session
# reaches the region before the next restore. The full copy is the time a
# fresh site takes to pull a full LSI. With --smoke: the profile is edge.
set -euo pipefail
bin=$1
shift
history=5 held_out=8 profile=edge json="" svg="" smoke=0 volume_tree=rootfs b4="" b4_json="" net=0
while [ $# -gt 0 ]; do
  case $1 in
    --tree) volume_tree=$2; shift ;;
    --svg) svg=$2; shift ;;
    --b4) b4=$2; shift ;;            # the learning_curve program: run B4 on the sessions
    --b4-json) b4_json=$2; shift ;;
    --history) history=$2; shift ;;
    --held-out) held_out=$2; shift ;;
    --profile) profile=$2; shift ;;
    --json) json=$2; shift ;;
    --smoke) smoke=1 history=2 held_out=1 profile=none volume_tree=smoke ;;
    --quick) history=3 held_out=3 ;;
    --network) net=1 ;;
    *) echo "session_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
source "$(dirname "$0")/profiles.sh"
source "$(dirname "$0")/network.sh"
[ $net -eq 1 ] && [ "$profile" = none ] && profile=edge
wan=$(wan_options "$profile") ||
  { echo "session_bench.sh: profile is metro, edge, constrained or none" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "session_bench.sh: needs root (mounts, losetup)" >&2; exit 1; }

cache=${LSIFS_BENCH_CACHE:-/var/cache/lsifs-bench}
work=$(mktemp -d "${TMPDIR:-/tmp}/lsifs-sessions.XXXXXX")
mnt=$work/mnt-record mnt0=$work/mnt-measure inner=$work/inner
case $volume_tree in rootfs | usr-share | smoke) ;; *) echo "session_bench.sh: --tree is rootfs or usr-share" >&2; exit 2 ;; esac
mkdir -p "$mnt" "$mnt0" "$inner"
pids=()
cleanup() {
  set +e
  mountpoint -q "$inner" && umount "$inner"
  for d in $(losetup -j "$mnt" -O NAME -n 2>/dev/null) $(losetup -a 2>/dev/null | grep "$work" | cut -d: -f1); do
    losetup -d "$d"
  done
  for m in "$mnt" "$mnt0"; do mountpoint -q "$m" && fusermount3 -u "$m"; done
  for p in "${pids[@]}"; do wait "$p"; done
  net_down
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the volume ------------------------------------------------------------
if [ $smoke -eq 1 ]; then
  tree=$work/tree
  mkdir -p "$tree/usr/share" "$tree/etc"
  cp -r /usr/share/common-licenses "$tree/usr/share/"
  cp -r /etc/apt "$tree/etc/"
  image=$work/root.img
  truncate -s 32M "$image"
  mke2fs -q -t ext4 -d "$tree" "$image"
elif [ "$volume_tree" = usr-share ]; then
  # This machine's /usr/share as the volume's root: a large real tree.
  image=$work/usr-share.img
  truncate -s "$(( $(du -sm /usr/share | cut -f1) * 13 / 10 + 128 ))M" "$image"
  mke2fs -q -t ext4 -d /usr/share "$image"
else
  mkdir -p "$cache"
  rootfs=$cache/rootfs
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    echo "building a Debian root filesystem in $rootfs (once; a few minutes)" >&2
    command -v debootstrap >/dev/null ||
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase \
      --include=python3,python3-yaml,perl,sqlite3,gzip,xz-utils,bzip2,file,man-db,less,procps,gawk \
      bookworm "$rootfs.tmp" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1
    mv "$rootfs.tmp" "$rootfs"
  fi
  image=$cache/rootfs.img
  if [ ! -f "$image" ] || [ "$rootfs" -nt "$image" ]; then
    size=$(( $(du -sm "$rootfs" | cut -f1) * 13 / 10 + 128 ))
    rm -f "$image.tmp"
    truncate -s "${size}M" "$image.tmp"
    mke2fs -q -t ext4 -d "$rootfs" "$image.tmp"
    mv "$image.tmp" "$image"
  fi
  cp --sparse=always "$image" "$work/root.img"
  image=$work/root.img
fi

export LSIFS_STORE=$work/store
"$bin/lsictl" init "$LSIFS_STORE" >/dev/null
"$bin/lsictl" key create site-a >/dev/null
"$bin/lsictl" import vol-root "$image" >/dev/null 2>&1
if [ $net -eq 1 ]; then
  net_up "$profile" "$work"
  site=$(net_site a site-a)
fi
start_mount() {  # start_mount MOUNTPOINT OPTIONS
  if [ $net -eq 1 ]; then
    # The first mount records and pulls; the second reads what it pulled.
    net_mount "$site" "$1" site-a "$(sed -E 's/,?origin_(latency|bandwidth)=[^,]*//g' <<<"$2")"
    return
  fi
  "$bin/lsifs" "$LSIFS_STORE" "$1" -e site-a -f -o "$2" 2>>"$work/lsifs.log" &
  pids+=($!)
  for _ in $(seq 100); do mountpoint -q "$1" && break; sleep 0.1; done
  mountpoint -q "$1" || { cat "$work/lsifs.log" >&2; exit 1; }
}
# One mount records (it holds the database) and expands; the other measures
# the baselines, without expansion.
start_mount "$mnt" "session_idle=1s${wan:+,$wan}"
start_mount "$mnt0" "session_idle=1s,record=0,expand=off,spill=memory${wan:+,$wan}"

# ---- the tasks -------------------------------------------------------------
# Paths are under $R: the mounted root for the smoke tree, "" under chroot.
core_tasks=(
  "ls -R \$R/etc \$R/usr/share/doc >/dev/null 2>&1"
  "cat \$R/etc/os-release \$R/etc/passwd \$R/etc/debian_version >/dev/null 2>&1"
)
varied_tasks=(
  "grep -rl GPL \$R/usr/share/common-licenses >/dev/null"
  "find \$R/usr/share -name '*.gz' | head -400 | xargs -r cat >/dev/null"
  "cat \$R/usr/share/common-licenses/* | sha256sum >/dev/null"
  "ls -lR \$R/usr/share >/dev/null"
)
if [ "$volume_tree" = usr-share ] && [ $smoke -eq 0 ]; then
  # The volume's root is /usr/share: documentation, manuals, locales, data.
  core_tasks=(
    "ls -R \$R/doc >/dev/null"
    "cat \$R/common-licenses/GPL-3 \$R/base-files/motd >/dev/null 2>&1"
  )
  varied_tasks=()
  for d in $(cd /usr/share && du -s -- */ 2>/dev/null | sort -n -r | head -24 | cut -f2); do
    varied_tasks+=("find \$R/$d -type f | head -40 | xargs -r cat >/dev/null 2>&1")
  done
  varied_tasks+=(
    "zcat \$R/man/man1/*.gz 2>/dev/null | head -c 20000000 >/dev/null"
    "grep -rl 'Copyright' \$R/doc 2>/dev/null | head -500 >/dev/null"
  )
elif [ $smoke -eq 0 ]; then
  core_tasks+=(
    "dpkg -l >/dev/null"
    "python3 -c 'import os, sys, json, re' >/dev/null"
  )
  varied_tasks+=(
    "python3 -c 'import json, sqlite3, email.mime.text, http.client, xml.dom.minidom, argparse, decimal, asyncio'"
    "python3 -c 'import yaml, unittest, logging.handlers, csv, zipfile, tarfile, shutil'"
    "python3 -c 'import pydoc; pydoc.render_doc(str)' >/dev/null"
    "python3 -c 'import multiprocessing, concurrent.futures, ssl, hashlib, ftplib, smtplib'"
    "perl -MPOSIX -MData::Dumper -MFile::Find -MGetopt::Long -e 'find(sub{}, \"/usr/share/perl5\")'"
    "sqlite3 :memory: 'create table t(a); insert into t values (1),(2); select sum(a) from t;' >/dev/null"
    "dpkg -L python3.11-minimal perl-base coreutils >/dev/null; dpkg -s libc6 >/dev/null"
    "awk -F': ' '/^Package/{n++} END{print n}' /var/lib/dpkg/status >/dev/null"
    "gzip -c /usr/bin/perl >/dev/null"
    "xz -T1 -c /usr/bin/sqlite3 >/dev/null"
    "file /usr/bin/* >/dev/null 2>&1"
    "grep -r 'def ' /usr/lib/python3.11/json /usr/lib/python3.11/email >/dev/null"
    "find /usr/lib/x86_64-linux-gnu -name '*.so*' | head -60 | xargs -r sha256sum >/dev/null"
  )
fi
# The tasks of session k: the core, then a seeded half of the rest in a
# seeded order.
session_tasks() {
  python3 - "$1" "${#varied_tasks[@]}" <<'EOF'
import random, sys
r = random.Random(int(sys.argv[1]) * 7919)
n = int(sys.argv[2])
picked = r.sample(range(n), max(1, n // 2))
print(" ".join(map(str, picked)))
EOF
}

task() {  # task COMMAND: run one task against the mounted volume
  if [ $smoke -eq 1 ] || [ "$volume_tree" = usr-share ]; then
    R=$inner sh -c "$1" || true
  else
    chroot "$inner" /bin/sh -c "R=; $1" || true
  fi
}

# restore: the JSON of a restore, asked where the sessions run.
restore() {
  if [ $net -eq 1 ]; then
    net_lsictl "$site" --json restore -e site-a -v vol-root
  else
    "$bin/lsictl" --json restore -e site-a -v vol-root
  fi
}
# learned K: with --network, waits until the region has K sessions of site-a
# (a recorded session is sent when it ends; the next restore is planned
# from it).
learned() { [ $net -eq 0 ] || net_wait_sessions site-a vol-root "$1"; }

# run_session MOUNTPOINT LSI SEED: wall seconds of the session's tasks.
run_session() {
  local dev t0 t1 i
  if [ $net -eq 1 ]; then
    # At the site: its manifest, then its layers pulled (the wait is the
    # pre-assembly's arrival ahead of use, not part of the session).
    for _ in $(seq 600); do [ -e "$1/by-id/$2.img" ] && break; sleep 0.1; done
    net_wait_pulled "$site" "$2" >"$work/pull_seconds"
    echo "  (LSI $2 pulled to the site in $(cat "$work/pull_seconds")s)" >&2
  fi
  dev=$(losetup -r -f --show --direct-io=on "$1/by-id/$2.img")
  cat "/sys/block/${dev#/dev/}/queue/read_ahead_kb" >"$work/read_ahead_kb"
  mount -o ro,noload "$dev" "$inner"
  sync; echo 3 >/proc/sys/vm/drop_caches
  t0=$(date +%s.%N)
  for t in "${core_tasks[@]}"; do task "$t"; done
  for i in $(session_tasks "$3"); do task "${varied_tasks[$i]}"; done
  t1=$(date +%s.%N)
  umount "$inner"
  losetup -d "$dev"
  sleep 1.6  # the session ends (session_idle) and the image is released
  python3 -c "print(round($t1 - $t0, 3))"
}

counter() {  # counter LSI NAME: a counter of the LSI as last saved
  "$bin/lsictl" lsi show "$1" --json | python3 -c "
import json, sys
c = json.load(sys.stdin)['counters'] or {}
print(c.get('$2', 0))"
}
field() {  # field JSON NAME
  python3 -c "import json, sys; print(json.loads(sys.argv[1])['$2'])" "$1"
}

read_ahead="?"
echo "volume: $(du -h --apparent-size "$image" | cut -f1) ext4 image; profile $profile ($wan);" \
  "history $history sessions, $held_out held out; loop devices with direct I/O" >&2
rows=$work/rows.tsv
: >"$rows"
seed_base=1000
# One run: a JSON line with the strategy, the session's time and the
# counters of its session (as the mount shows them once it has ended).
record_run() {  # record_run K STRATEGY MOUNTPOINT LSI
  local t
  t=$(run_session "$3" "$4" $((seed_base + $1)))
  python3 - "$1" "$2" "$t" "$3/.lsifs/$4.json" "$("$bin/lsictl" lsi show "$4" --json)" \
    "$([ $net -eq 1 ] && cat "$work/pull_seconds")" <<'PY' >>"$rows"
import json, sys
k, strategy, t, counters_path, lsi, pull = sys.argv[1:7]
c = json.load(open(counters_path))["session_counters"]
l = json.loads(lsi)
row = {"k": int(k), "strategy": strategy, "seconds": float(t),
       "layer_bytes": l["prefetched_blocks"] * l["block_size"], **c}
if pull:
    row["pull_seconds"] = float(pull)  # the layers' arrival at the site, before the session
print(json.dumps(row))
PY
  echo "  $2: ${t}s" >&2
}
# History: the psa+exp path only, recorded.
first_psa_fetched=""
for k in $(seq 1 "$history"); do
  json_k=$(restore)
  id=$(field "$json_k" lsi)
  # The first LSI composed from history, before any baseline exists: what a
  # pre-assembly costs the link from nothing.
  if [ -z "$first_psa_fetched" ] && [ "$(field "$json_k" prefetched_blocks)" -gt 0 ]; then
    first_psa_fetched=$(field "$json_k" fetched_blocks)
  fi
  t=$(run_session "$mnt" "$id" $((seed_base + k)))
  echo "history session $k: ${t}s on LSI $id" >&2
  learned "$k"
done
# Baselines that do not depend on history: made once.
lazy=$("$bin/lsictl" preassemble -e site-a -v vol-root --strategy none 2>/dev/null)
# The full copy: every present block fetched over the link before the
# session starts (the recording mount's daemon runs it, on its link). It is
# timed for an extension with no layers yet (site-a's would let it re-seal
# what its earlier LSIs hold); the "full" strategy is the copy's time plus
# the session on site-a's fully local LSI.
"$bin/lsictl" key create site-copy >/dev/null
t0=$(date +%s.%N)
copy_json=$("$bin/lsictl" --json preassemble -e site-copy -v vol-root --strategy full 2>/dev/null)
copy_seconds=$(python3 -c "print(round($(date +%s.%N) - $t0, 3))")
if [ $net -eq 1 ]; then
  # Over the network the region assembles it next to its snapshots; the
  # copy is a fresh site's pull of it, from its mount to its last layer.
  copy_site=$(net_site copy site-copy)
  "$bin/lsictl" lsi deliver "$(field "$copy_json" lsi)" >/dev/null 2>&1
  mkdir -p "$work/mnt-copy"
  t0=$(date +%s.%N)
  net_mount "$copy_site" "$work/mnt-copy" site-copy "record=0"
  net_wait_pulled "$copy_site" "$(field "$copy_json" lsi)" >/dev/null
  copy_seconds=$(python3 -c "print(round($(date +%s.%N) - $t0, 3))")
  fusermount3 -u "$work/mnt-copy"
fi
[ "$(field "$copy_json" fetched_blocks)" = "$(field "$copy_json" prefetched_blocks)" ] ||
  { echo "session_bench.sh: the full copy did not fetch every block: $copy_json" >&2; exit 1; }
"$bin/lsictl" lsi drop "$(field "$copy_json" lsi)" >/dev/null
echo "full copy over the link: ${copy_seconds}s" >&2
local_lsi=$("$bin/lsictl" preassemble -e site-a -v vol-root --strategy full 2>/dev/null)
"$bin/lsictl" lsi deliver "$lazy" 2>/dev/null
"$bin/lsictl" lsi deliver "$local_lsi" 2>/dev/null
for k in $(seq $((history + 1)) $((history + held_out))); do
  echo "held-out session $k:" >&2
  record_run "$k" lazy "$mnt0" "$lazy"
  record_run "$k" local "$mnt0" "$local_lsi"
  # full: the same session after the copy (its time added; the copy is
  # measured once: it moves the same bytes for every session).
  tail -n 1 "$rows" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
r.update(strategy='full', seconds=round(r['seconds'] + $copy_seconds, 3), copy_seconds=$copy_seconds)
print(json.dumps(r))" >>"$rows"
  replay=$("$bin/lsictl" preassemble -e site-a -v vol-root --strategy replay 2>/dev/null)
  "$bin/lsictl" lsi deliver "$replay" 2>/dev/null
  record_run "$k" replay "$mnt0" "$replay"
  psa=$(field "$(restore)" lsi)
  record_run "$k" psa "$mnt0" "$psa"
  record_run "$k" psa+exp "$mnt" "$psa"  # recorded: session k of the history
  learned "$k"
  oracle=$("$bin/lsictl" preassemble -e site-a -v vol-root --strategy replay 2>/dev/null)
  "$bin/lsictl" lsi deliver "$oracle" 2>/dev/null
  record_run "$k" oracle "$mnt0" "$oracle"
  # The oracle and replay LSIs are made again for each session.
  for l in "$replay" "$oracle"; do "$bin/lsictl" lsi drop "$l" >/dev/null 2>&1 || true; done
done

# B4: every recorded session replayed through the predictor (before the
# image changes below).
if [ -n "$b4" ]; then
  for k in $(seq 1 $((history + held_out))); do
    "$bin/lsictl" access show -e site-a -v vol-root --session "$k" --json
  done | python3 -c "
import json, sys
print(json.dumps([json.loads(l)['blocks'] for l in sys.stdin if l.strip()]))" >"$work/sessions.json"
  bs=$("$bin/lsictl" snapshots vol-root --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['block_size'])")
  "$b4" --sessions "$work/sessions.json" --image "$image" --block-size "$bs" ${b4_json:+--json "$b4_json"}
  if [ -n "$b4_json" ] && [ -n "$svg" ]; then
    python3 "$(dirname "$0")/b4_plot.py" "$b4_json" "${svg%.svg}-b4.svg" "$volume_tree"
  fi
fi

# A new snapshot: a few files change; what does its pre-assembly fetch? (The
# baselines go first: only the predicted LSIs' layers may serve it locally.)
baselines=$("$bin/lsictl" --json lsi list | python3 -c "
import json, sys
print(' '.join(l['lsi'] for l in json.load(sys.stdin) if l['strategy'] != 'predicted'))")
for l in $baselines; do "$bin/lsictl" lsi drop "$l" >/dev/null 2>&1; done
changed=etc/debian_version  # a small file of the tree, rewritten
[ "$volume_tree" = usr-share ] && changed=common-licenses/BSD
debugfs -w -R "write /etc/hostname lsifs-bench-new-file" "$image" >/dev/null 2>&1
debugfs -w -R "rm $changed" "$image" >/dev/null 2>&1
debugfs -w -R "write /etc/hostname $changed" "$image" >/dev/null 2>&1
import_json=$("$bin/lsictl" --json import vol-root "$image")
# Nothing changed (debugfs failed): the figures above stand; say so.
[ "$(field "$import_json" new_blocks)" -gt 0 ] ||
  echo "session_bench.sh: the new snapshot changed nothing; its figures are meaningless" >&2
new_json=$("$bin/lsictl" --json preassemble -e site-a -v vol-root)

read_ahead=$(cat "$work/read_ahead_kb" 2>/dev/null || echo "?")
# A network run is named apart, so that b2_report.py puts it beside the model's.
python3 "$(dirname "$0")/b3_report.py" "$rows" "$first_psa_fetched" "$new_json" \
  "$profile$([ $net -eq 1 ] && echo -network)" \
  "$history" "$read_ahead" "$volume_tree" "${json:-}" "${svg:-}"
