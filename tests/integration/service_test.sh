#!/usr/bin/env bash
# lsifs as a system gets it from cmake --install, run as an operator or
# systemd would: every file in its place (with --prefix and with DESTDIR),
# the unit and the example consumer of lsifs(8) valid for systemd-analyze,
# the unit's ExecStart reporting readiness and waiting out a busy stop,
# -o pidfile, mount.lsifs's exit codes and the lsifs it finds through a link,
# --version, and the bash completion of lsictl.
# Usage: service_test.sh CMAKE BUILD_DIR VERSION
CMAKE=$1
BUILD=$2
VERSION=$3
source "$(dirname "$0")/lib.sh"

P=$WORK/prefix
L=$P/bin/lsictl
F=$P/bin/lsifs
UNIT=$P/lib/systemd/system/lsifs@.service
COMPLETION=$P/share/bash-completion/completions/lsictl

# --- cmake --install ----------------------------------------------------
"$CMAKE" --install "$BUILD" --prefix "$P" >"$WORK/install.log"
installed() {
  local f
  for f in bin/lsictl bin/lsifs sbin/mount.lsifs lib/systemd/system/lsifs@.service \
    share/bash-completion/completions/lsictl share/man/man8/lsictl.8 share/man/man8/lsifs.8 \
    share/man/man8/mount.lsifs.8 share/man/man5/lsi.5; do
    [ -f "$1/$f" ] || { echo "  missing: $1/$f" >&2; return 1; }
  done
  for f in bin/lsictl bin/lsifs sbin/mount.lsifs; do
    [ -x "$1/$f" ] || { echo "  not executable: $1/$f" >&2; return 1; }
  done
  [ "$(readlink "$1/sbin/mount.fuse.lsifs")" = mount.lsifs ] ||
    { echo "  sbin/mount.fuse.lsifs is not a link to mount.lsifs" >&2; return 1; }
}
check "cmake --install --prefix puts every file in its place" installed "$P"
check "the unit runs the lsifs of the prefix" grep -q "^ExecStart=$P/bin/lsifs " "$UNIT"
DESTDIR=$WORK/stage "$CMAKE" --install "$BUILD" --prefix /opt/lsifs >"$WORK/stage.log"
check "DESTDIR stages every file under the prefix" installed "$WORK/stage/opt/lsifs"
check "a staged unit runs lsifs from the prefix, not from the stage" \
  grep -q "^ExecStart=/opt/lsifs/bin/lsifs " "$WORK/stage/opt/lsifs/lib/systemd/system/lsifs@.service"

# --- --version: the project's version, the man pages' too ------------------
check "lsifs --version" test "$("$F" --version)" = "lsifs $VERSION"
check "lsictl --version" test "$("$L" --version)" = "lsictl (lsifs) $VERSION"
check "every man page names the version" bash -c "
  for m in '$P'/share/man/man8/*.8 '$P'/share/man/man5/*.5; do
    head -1 \"\$m\" | grep -qF '\"lsifs $VERSION\"' || { echo \"  \$m\" >&2; exit 1; }
  done"

# --- the unit ------------------------------------------------------------
# A stop is SIGTERM to lsifs alone and never a SIGKILL, however long a busy
# mount takes (lsifs(8), RUNNING AS A SERVICE).
for line in KillMode=process SendSIGKILL=no TimeoutStopSec=infinity; do
  check "the unit has $line" grep -qx "$line" "$UNIT"
done
# The example consumer of lsifs(8), as printed there.
example_consumer() {
  sed -n '/^# \/etc\/systemd\/system\/vol\\-db\\-ro.service/,/^\.fi/p' "$P/share/man/man8/lsifs.8" |
    sed '1d;$d; s/\\-/-/g; s/\\e/\\/g'
}
mkdir "$WORK/units" "$WORK/bad-units"
cp "$UNIT" "$WORK/units/"
example_consumer >"$WORK/units/vol-db-ro.service"
check "lsifs(8) has the example consumer" grep -q '^Requires=lsifs@srv-lsi-site\\x2da.service$' \
  "$WORK/units/vol-db-ro.service"
if command -v systemd-analyze >/dev/null; then
  # Quiet and 0: systemd-analyze verify only warns (exit 0) for an unknown
  # setting. MANPATH: Documentation= must name installed man pages.
  verify() {
    local out rc=0
    out=$(MANPATH=$P/share/man systemd-analyze verify "$@" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ] || [ -n "$out" ]; then echo "  exit $rc: $out" >&2; return 1; fi
  }
  check "systemd-analyze verify: the unit, an instance, the example consumer" \
    verify "$WORK/units/lsifs@.service" "$WORK/units/vol-db-ro.service"
  # The check above would see a consumer whose unit names are mistyped.
  cp "$UNIT" "$WORK/bad-units/"
  sed 's/lsifs@/lsfs@/' "$WORK/units/vol-db-ro.service" >"$WORK/bad-units/vol-db-ro.service"
  check "systemd-analyze verify fails on a consumer that requires no real unit" \
    eval "! verify '$WORK/bad-units/lsifs@.service' '$WORK/bad-units/vol-db-ro.service' 2>/dev/null"
else
  skip "systemd-analyze is not installed: the unit and the example consumer were not verified"
fi
if [ "$(ps -o comm= -p 1)" != systemd ]; then
  echo "note: systemd is not PID 1 here: the unit is never started by systemd in this test"
fi

# --- a store with an LSI delivered to site-a ------------------------------
S=$WORK/store
export LSIFS_STORE=$S
"$L" init "$S" --block-size 64K >/dev/null
"$L" key create site-a >/dev/null
"$L" key create site-b >/dev/null
mkdir -p "$WORK/tree" "$WORK/run" "$WORK/m"
cp -r /etc/apt "$WORK/tree/"
make_ext4 "$WORK/fs.img" 16M "$WORK/tree"
"$L" import vol "$WORK/fs.img" >/dev/null 2>&1
LSI=$("$L" restore -e site-a -v vol 2>/dev/null)
SNAP=$("$L" snapshots vol --json | python3 -c "import json,sys; print(json.load(sys.stdin)[-1]['snapshot'])")
M=$WORK/m
on_exit "fusermount3 -u -z '$M' 2>/dev/null"
gone() {  # PID SECONDS: the process has exited within SECONDS (a child of
  # this shell that exited is a zombie until waited for: gone too)
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*zombie' "/proc/$1/status" 2>/dev/null; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}
wait_for_line() {  # SECONDS PATTERN FILE: a line of FILE matches within SECONDS
  local deadline=$((SECONDS + $1))
  until grep -q -- "$2" "$3" 2>/dev/null; do
    [ $SECONDS -ge $deadline ] && { echo "  no '$2' in $3: $(cat "$3" 2>/dev/null)" >&2; return 1; }
    sleep 0.1
  done
}

# --- the unit's ExecStart, as systemd runs it -----------------------------
# systemd substitutes %f (the unescaped mount point) and gives each ${VAR}
# as one argument, even an empty one.
unit_command() {
  sed -n 's/^ExecStart=//p' "$UNIT" | sed 's/%f/"$M"/g; s/\${\([A-Z_]*\)}/"${\1}"/g'
}
if grep -qx Type=notify "$UNIT"; then
  # systemd's side of sd_notify: a datagram socket in NOTIFY_SOCKET.
  cat >"$WORK/notify.py" <<'EOF'
import os, socket, sys
sock_path, log_path, mnt = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
s.settimeout(60)
with open(log_path, "a") as log:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        for line in msg.split("\n"):
            if line == "READY=1":  # was the mount there when it said so?
                line += " (mounted)" if os.path.ismount(mnt) else " (NOT MOUNTED)"
            log.write(line + "\n")
        log.flush()
        if "STOPPING=1" in msg:
            break
EOF
  python3 "$WORK/notify.py" "$WORK/notify.sock" "$WORK/notify.log" "$M" &
  NOTIFY_PID=$!
  on_exit "kill $NOTIFY_PID 2>/dev/null"
  for _ in $(seq 50); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
  : >"$WORK/journal.log"
  # The settings of /etc/lsifs/MOUNTPOINT.conf. No pre-assembly: the LSIs
  # stay the one delivered, for the completion below.
  # shellcheck disable=SC2034 # read by the eval
  LSIFS_STORE=$S LSIFS_EXTENSION=site-a LSIFS_OPTIONS=session_idle=200ms,preassemble=off
  eval "set -- $(unit_command)"
  NOTIFY_SOCKET=$WORK/notify.sock JOURNAL_STREAM=$(stat -c %d:%i "$WORK/journal.log") \
    "$@" 2>>"$WORK/journal.log" &
  D=$!
  on_exit "kill -9 $D 2>/dev/null"
  check "the unit's lsifs reports READY=1 once mounted" \
    wait_for_line 20 "READY=1 (mounted)" "$WORK/notify.log"
  check "... with a STATUS= of what it serves" grep -q "^STATUS=serving extension 'site-a'" \
    "$WORK/notify.log"
  check "its log lines go to the journal once, with their level" \
    grep -q "^<4>serving extension 'site-a'" "$WORK/journal.log"
  # systemctl stop while a reader holds the image: SIGTERM, and lsifs waits.
  exec 7<"$M/vol.img"
  dd bs=64K count=4 <&7 >/dev/null 2>&1
  kill -TERM "$D"
  check "a stop while the image is open waits for it (busy=wait)" \
    wait_for_line 10 "^STATUS=stopping when the last open image is closed: busy: vol.img open" \
    "$WORK/notify.log"
  check "... still mounted, still running" bash -c "mountpoint -q '$M' && kill -0 $D"
  exec 7<&-
  check "... and stops once it is closed" gone "$D" 20
  rc=0
  wait "$D" || rc=$?
  check "... with status 0, and STOPPING=1" bash -c "[ $rc -eq 0 ] && grep -qx STOPPING=1 '$WORK/notify.log'"
  check "... unmounted" bash -c "! mountpoint -q '$M'"
  wait "$NOTIFY_PID" 2>/dev/null || true
else
  skip "the unit is Type=forking (built without libsystemd): sd_notify readiness not tested"
fi

# --- -o pidfile ----------------------------------------------------------
echo 99999 >"$WORK/run/lsifs.pid"  # left by a daemon that was killed
rc=0
(umask 077 && "$F" "$S" "$M" -e site-a -o pidfile="$WORK/run/lsifs.pid") || rc=$?
check "lsifs -o pidfile returns 0 once mounted" bash -c "[ $rc -eq 0 ] && mountpoint -q '$M'"
D=$(cat "$WORK/run/lsifs.pid" 2>/dev/null || echo none)
on_exit "kill -9 $D 2>/dev/null"
check "the pid file names the daemon" test "$(readlink "/proc/$D/exe" 2>/dev/null)" = "$F"
check "... a decimal and a newline, mode 0644 whatever the umask" bash -c "
  printf '%s\n' '$D' | cmp -s - '$WORK/run/lsifs.pid' && [ \$(stat -c %a '$WORK/run/lsifs.pid') = 644 ]"
check "no temporary file is left beside it" test "$(ls "$WORK/run")" = lsifs.pid
fusermount3 -u "$M"
check "the daemon exits after the unmount" gone "$D" 20
check "... and removes its pid file" test ! -e "$WORK/run/lsifs.pid"
check "a pid file that cannot be written is refused before mounting" \
  expect_fail 1 "pidfile=$WORK/nowhere/lsifs.pid: cannot write in $WORK/nowhere" \
  "$F" "$S" "$M" -e site-a -o pidfile="$WORK/nowhere/lsifs.pid"
check "... and nothing is mounted" bash -c "! mountpoint -q '$M'"

# --- mount.lsifs ---------------------------------------------------------
# As mount(8) runs it: /sbin/mount.fuse.lsifs, a link to the installed
# helper, beside an lsifs that is not the one installed with it.
mkdir "$WORK/sbin"
ln -s "$P/sbin/mount.fuse.lsifs" "$WORK/sbin/mount.fuse.lsifs"
printf '#!/bin/sh\necho "wrong lsifs" >&2; exit 99\n' >"$WORK/sbin/lsifs"
chmod +x "$WORK/sbin/lsifs"
H=$WORK/sbin/mount.fuse.lsifs
export PATH=/usr/sbin:/usr/bin:/sbin:/bin  # no lsifs on PATH
check "mount.lsifs without arguments: 1" expect_fail 1 "usage: mount.lsifs" "$H"
check "mount.lsifs with an unknown argument: 1" expect_fail 1 "usage: mount.lsifs" "$H" "$S" "$M" --bogus
check "mount.lsifs without ext=: 1" expect_fail 1 "no extension" "$H" "$S" "$M" -o origin_latency=1ms
check "mount.lsifs when lsifs fails (no such store): 32" \
  expect_fail 32 "lsifs: store $WORK/nostore" "$H" "$WORK/nostore" "$M" -o ext=site-a
check "mount.lsifs when lsifs refuses an option: 32" \
  expect_fail 32 "lsifs: -o cache_size" "$H" "$S" "$M" -o ext=site-a,cache_size=lots
rc=0
"$H" "$S" "$M" -s -o ext=site-a,nofail,preassemble=off,pidfile="$WORK/run/m.pid" || rc=$?
check "mount.lsifs through a link mounts: 0" bash -c "[ $rc -eq 0 ] && mountpoint -q '$M'"
D=$(cat "$WORK/run/m.pid" 2>/dev/null || echo none)
on_exit "kill -9 $D 2>/dev/null"
check "... with the lsifs beside its real path" test "$(readlink "/proc/$D/exe" 2>/dev/null)" = "$F"
check "... and the image reads" cmp -s "$WORK/fs.img" "$M/vol.img"
fusermount3 -u "$M"
check "... unmounted, the daemon exits" gone "$D" 20

# --- bash completion of lsictl --------------------------------------------
# completions INIT WORDS...: what _lsictl offers for the words (the last one
# being completed), sorted, on one line; INIT runs first.
completions() {
  local init=$1
  shift
  PATH=$P/bin:$PATH LSIFS_STORE=$COMP_STORE LC_ALL=C bash -c "$init"'
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _lsictl
    printf "%s\n" "${COMPREPLY[@]}" | sort | paste -sd" "' bash "$COMPLETION" "$@"
}
offers() {  # WANT INIT WORDS...
  local want=$1 got
  shift
  got=$(completions "$@")
  [ "$got" = "$want" ] || { echo "  got '$got', wanted '$want'" >&2; return 1; }
}
COMP_STORE=$S
completion_checks() {  # INIT HOW
  check "completion ($2): lsictl key" offers "create delete export-provider import-provider list rotate" "$1" lsictl key ""
  check "completion ($2): lsictl lsi" offers "deliver drop list show" "$1" lsictl lsi ""
  check "completion ($2): lsictl lsi show ID" offers "$LSI" "$1" lsictl lsi show ""
  check "completion ($2): lsictl ke" offers "key" "$1" lsictl ke
  check "completion ($2): -e EXT" offers "site-a site-b" "$1" lsictl restore -e ""
  COMP_STORE=""  # from -s only
  check "completion ($2): -s STORE restore -e EXT -v VOLUME" \
    offers vol "$1" lsictl -s "$S" restore -e site-a -v ""
  COMP_STORE=$S
  check "completion ($2): --snapshot ID" offers "$SNAP" "$1" lsictl restore -e site-a -v vol --snapshot ""
  check "completion ($2): snapshot delete VOLUME ID" offers "$SNAP" "$1" lsictl snapshot delete vol ""
  check "completion ($2): a command's options" offers "--all --help --json --store" "$1" lsictl verify --
}
completion_checks "" "plain bash"
if [ -f /usr/share/bash-completion/bash_completion ]; then
  completion_checks "source /usr/share/bash-completion/bash_completion;" "with _init_completion"
else
  skip "bash-completion is not installed: the completion was not tried with _init_completion"
fi

finish
