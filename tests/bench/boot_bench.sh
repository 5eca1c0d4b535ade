#!/usr/bin/env bash
# B8 (BENCHMARKS.md): a VM boots from an LSI.
#
#   boot_bench.sh BIN_DIR [--profiles edge,constrained] [--history 5]
#                 [--held-out 5] [--json FILE] [--svg FILE] [--smoke] [--network]
#
# The volume is an ext4 image of a bootable Debian 12 root filesystem
# (debootstrap: its own kernel and initramfs, systemd, python3, curl) whose
# lsifs-workload.service (tests/bench/boot/) runs a small real workload once
# the system is up, prints LSIFS-WORKLOAD-DONE on the serial console and
# powers off. It is built once and cached in $LSIFS_BENCH_CACHE (default
# /var/cache/lsifs-bench), again when the guest files or the package list
# change. A boot: attach the image with losetup -r, drop the page cache,
# start the clock, read the kernel and the initramfs out of the image through
# the loop device (debugfs, as a boot loader would: those bytes come through
# lsifs too), and boot qemu-system-x86_64 (TCG) on the loop device as a
# read-only virtio disk under a qcow2 overlay for the guest's writes; the
# clock stops at the marker. Boot k passes lsifs.seed=k on the kernel command
# line: the workload's varied half follows it, so no boot replays another.
# Per WAN profile, on a store of its own: --history boots build history (the
# psa+exp path, recorded), then each held-out boot k is run every way, side
# by side:
#   raw        the image file attached directly from local disk (no lsifs)
#   local      every present block in delta layers (preassemble --strategy full)
#   lazy       base-only LSI: every first read waits on the origin (--strategy none)
#   psa+exp    the LSI the predictor composed from boots < k, read-time
#              expansion on (this run is recorded: history is one run per boot)
# Medians per strategy and profile, the goals' ratios (psa+exp/local under
# edge <= 1.1, lazy/psa+exp under constrained >= 4), WAN bytes and
# no_wait_share per boot from the session counters: a table, --json, --svg.
# --smoke: Debian's kernel from its .deb (cached), a tiny busybox root disk
# and initramfs, one boot through lsifs without a WAN model; the guest prints
# the checksum of a file it read from the root disk, which must match the
# host's, and the boot must be learned. Under a minute; no debootstrap;
# --json records the boot, --svg is not drawn.
# --network: the two-site form over a real network (tests/bench/network.sh):
# lsid holds each profile's store in one network namespace, the boots run
# from a site's lsifs --region in another, over TCP and TLS 1.3 on a veth
# pair that tc holds to the profile's bandwidth (its latency from the site's
# link model); restores are lsictl --region from the site, each LSI's
# layers are pulled before its boot (the wait reported, not counted), and a
# recorded boot reaches the region before the next restore. With --smoke:
# the edge profile.
set -euo pipefail
bin=${1:?usage: boot_bench.sh BIN_DIR [--profiles P,...] [--history N] [--held-out N] [--json FILE] [--svg FILE] [--smoke]}
shift
profiles=edge,constrained history=5 held_out=5 json="" svg="" smoke=0 net=0
while [ $# -gt 0 ]; do
  case $1 in
    --profiles) profiles=$2; shift ;;
    --history) history=$2; shift ;;
    --held-out) held_out=$2; shift ;;
    --json) json=$2; shift ;;
    --svg) svg=$2; shift ;;
    --smoke) smoke=1 ;;
    --network) net=1 ;;
    *) echo "boot_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091 # profiles.sh, beside this script, is checked on its own
source "$here/profiles.sh"
# shellcheck disable=SC1091 # network.sh too
source "$here/network.sh"
for p in ${profiles//,/ }; do
  wan_options "$p" >/dev/null ||
    { echo "boot_bench.sh: a profile is metro, edge, constrained or none, not $p" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "boot_bench.sh: needs root (mounts, losetup, drop_caches)" >&2; exit 1; }
for c in qemu-system-x86_64 qemu-img debugfs mke2fs losetup fusermount3 python3; do
  command -v "$c" >/dev/null ||
    { echo "boot_bench.sh: $c is missing (bash scripts/install-deps.sh installs it)" >&2; exit 1; }
done
if [ $smoke -eq 1 ]; then
  for c in cpio depmod modprobe apt-get; do
    command -v "$c" >/dev/null ||
      { echo "boot_bench.sh: $c is missing (bash scripts/install-deps.sh installs it)" >&2; exit 1; }
  done
  # The smoke guest has no libraries: its busybox must be the static one.
  if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    echo "boot_bench.sh: the smoke needs a static /bin/busybox (package busybox-static)" >&2
    exit 1
  fi
fi
if [ ! -x "$bin/lsifs" ] || [ ! -x "$bin/lsictl" ]; then
  echo "boot_bench.sh: no lsifs and lsictl in $bin" >&2
  exit 1
fi
# A boot that takes longer than this fails the run (TCG is slow, and a lazy
# boot over the constrained link waits on thousands of round trips).
boot_timeout=${LSIFS_BOOT_TIMEOUT:-1800}
[ $smoke -eq 1 ] && boot_timeout=${LSIFS_BOOT_TIMEOUT:-150}

cache=${LSIFS_BENCH_CACHE:-/var/cache/lsifs-bench}
work=$(mktemp -d "${TMPDIR:-/tmp}/lsifs-boot.XXXXXX")
mounts=() pids=() devs=() driver=""
cleanup() {
  local rc=$?
  set +e
  # A long run that fails keeps the boots it measured.
  if [ $rc -ne 0 ] && [ -s "$work/rows.jsonl" ]; then
    cp "$work/rows.jsonl" "${TMPDIR:-/tmp}/lsifs-boot-failed.rows.jsonl" &&
      cp "$work/lsifs.log" "${TMPDIR:-/tmp}/lsifs-boot-failed.lsifs.log" &&
      echo "boot_bench.sh: the boots measured so far and lsifs's log are in ${TMPDIR:-/tmp}/lsifs-boot-failed.*" >&2
  fi
  # The driver first: on SIGTERM it kills its qemu and says nothing.
  [ -n "$driver" ] && kill "$driver" 2>/dev/null && wait "$driver"
  # Then, should the driver have died first, the qemu this run started, by
  # its pid file, and only if that pid is still that qemu.
  if [ -s "$work/qemu.pid" ]; then
    q=$(cat "$work/qemu.pid")
    if tr '\0' ' ' 2>/dev/null <"/proc/$q/cmdline" | grep -qF -- "-pidfile $work/qemu.pid"; then
      kill -9 "$q"
      # Until it is gone it holds the loop device, and the loop device the
      # image in the mount.
      for _ in $(seq 50); do [ -e "/proc/$q" ] || break; sleep 0.1; done
    fi
  fi
  for d in "${devs[@]}"; do losetup -d "$d" 2>/dev/null; done
  for m in "${mounts[@]}"; do mountpoint -q "$m" && fusermount3 -u "$m"; done
  for p in "${pids[@]}"; do wait "$p"; done
  net_down
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "boot_bench.sh: interrupted" >&2; exit 130' INT
trap 'echo "boot_bench.sh: terminated" >&2; exit 143' TERM

fail() { echo "boot_bench.sh: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- the guest ---------------------------------------------------------------
# Sets image (the root disk's ext4 image), kver, and the checksums of the
# kernel and initramfs in it (every boot checks what it read out).
guest_smoke() {
  # Debian's kernel as its package ships it, cached: the image and the few
  # modules an initramfs needs to mount a virtio ext4 root.
  local kdir pkg x
  kdir=$(find "$cache" -maxdepth 1 -name 'smoke-kernel-*' ! -name '*.tmp' 2>/dev/null | sort | tail -1)
  if [ -z "$kdir" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
    [ -n "$pkg" ] || fail "apt-cache knows no linux-image-amd64 (run apt-get update)"
    echo "fetching $pkg for the smoke boot (once)" >&2
    x=$work/kernel-deb
    mkdir -p "$x" "$cache"
    (cd "$x" && apt-get -o APT::Sandbox::User=root download -qq "$pkg" >/dev/null) ||
      fail "apt-get download $pkg failed"
    dpkg -x "$x"/*.deb "$x/root"
    kver=$(ls "$x/root/lib/modules")
    depmod -b "$x/root" "$kver"
    kdir=$cache/smoke-kernel-$kver
    rm -rf "$kdir.tmp"
    mkdir -p "$kdir.tmp/modules"
    cp "$x/root/boot/vmlinuz-$kver" "$kdir.tmp/vmlinuz"
    # Load order from the kernel's own dependency data, each module once.
    modprobe -d "$x/root" -S "$kver" --show-depends -a virtio_pci virtio_blk crc32c_generic ext4 |
      awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r m; do
        cp "$m" "$kdir.tmp/modules/"
        basename "$m" >>"$kdir.tmp/modules.order"
      done
    rm -rf "$kdir" "$x"
    mv "$kdir.tmp" "$kdir"
  fi
  kver=${kdir##*/smoke-kernel-}
  local tree=$work/smoke-root initrd=$work/smoke-initrd
  mkdir -p "$tree"/{bin,sbin,proc,boot} "$initrd"/{bin,modules}
  cp /bin/busybox "$tree/bin/busybox"
  cp "$here/boot/smoke-root-init" "$tree/sbin/init"
  cp /bin/busybox "$initrd/bin/busybox"
  cp "$here/boot/smoke-initramfs-init" "$initrd/init"
  cp "$kdir"/modules/*.ko "$initrd/modules/"
  cp "$kdir/modules.order" "$initrd/modules.order"
  (cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$tree/boot/initrd.img-$kver"
  cp "$kdir/vmlinuz" "$tree/boot/vmlinuz-$kver"
  # The payload: fresh bytes each run (a stale answer cannot match), over
  # many blocks of the volume.
  head -c 3M /dev/urandom >"$tree/payload"
  payload_sha=$(sha "$tree/payload")
  # A disk holds more than a boot reads: without this, the boot would read
  # nearly every block in order, and lsifs (sequential=skip) would rightly
  # take it for a whole-image copy and not learn it.
  head -c 16M /dev/urandom >"$tree/unread"
  vmlinuz_sha=$(sha "$tree/boot/vmlinuz-$kver")
  initrd_sha=$(sha "$tree/boot/initrd.img-$kver")
  image=$work/smoke-root.img
  truncate -s 64M "$image"
  mke2fs -q -t ext4 -d "$tree" "$image"
}

# The Debian root filesystem. What debootstrap installs, and the kernel
# command line's needs: systemd as init, udev for /dev/vda, zstd for the
# initramfs (initramfs-tools's default compression), python3 and curl for
# the workload.
boot_packages=linux-image-amd64,initramfs-tools,zstd,udev,systemd-sysv,python3,curl
guest_debian() {
  mkdir -p "$cache"
  local base=$cache/boot-rootfs key stage f
  if [ ! -x "$base/usr/bin/python3" ] || [ "$(cat "$base.packages" 2>/dev/null)" != "$boot_packages" ]; then
    echo "building a bootable Debian root filesystem in $base (once; several minutes)" >&2
    command -v debootstrap >/dev/null || fail "debootstrap is missing (bash scripts/install-deps.sh)"
    rm -rf "$base.tmp"
    debootstrap --variant=minbase --include="$boot_packages" \
      bookworm "$base.tmp" http://deb.debian.org/debian >"$cache/boot-debootstrap.log" 2>&1 ||
      fail "debootstrap failed (see $cache/boot-debootstrap.log)"
    ls "$base.tmp"/boot/vmlinuz-* "$base.tmp"/boot/initrd.img-* >/dev/null 2>&1 ||
      fail "debootstrap left no kernel or initramfs in $base.tmp/boot"
    rm -rf "$base"
    mv "$base.tmp" "$base"
    echo "$boot_packages" >"$base.packages"
  fi
  # The image is rebuilt whenever what goes into it changes: the packages,
  # the guest files, the configuration below (this function's text).
  key=$( { echo "$boot_packages"; declare -f guest_debian; cat "$here"/boot/lsifs-workload*; } | sha256sum | cut -d' ' -f1)
  image=$cache/boot-root.img
  if [ "$(cat "$cache/boot-root.key" 2>/dev/null)" != "$key" ] || [ ! -f "$image" ] || [ ! -f "$cache/boot-root.env" ]; then
    echo "making the boot image $image" >&2
    stage=$cache/boot-stage.tmp
    rm -rf "$stage" "$image.tmp"
    cp -a "$base" "$stage"
    # Root on the virtio disk, checked and remounted read-write at boot
    # (the writes go to the qcow2 overlay); a fixed machine id, so that no
    # boot runs systemd's first-boot setup.
    echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" >"$stage/etc/fstab"
    echo lsifs-b8 >"$stage/etc/hostname"
    echo 5a1f5b8e0c3d4e6f8a9b0c1d2e3f4a5b >"$stage/etc/machine-id"
    install -m 0755 "$here/boot/lsifs-workload" "$stage/usr/local/sbin/lsifs-workload"
    install -m 0644 "$here/boot/lsifs-workload.service" "$stage/etc/systemd/system/lsifs-workload.service"
    mkdir -p "$stage/etc/systemd/system/multi-user.target.wants"
    ln -sf ../lsifs-workload.service "$stage/etc/systemd/system/multi-user.target.wants/"
    f=$(find "$stage/boot" -name 'vmlinuz-*' | sort | tail -1)
    kver=${f##*/vmlinuz-}
    printf 'kver=%s\nvmlinuz_sha=%s\ninitrd_sha=%s\n' "$kver" "$(sha "$f")" \
      "$(sha "$stage/boot/initrd.img-$kver")" >"$cache/boot-root.env.tmp"
    truncate -s "$(( $(du -sm "$stage" | cut -f1) * 13 / 10 + 128 ))M" "$image.tmp"
    mke2fs -q -t ext4 -d "$stage" "$image.tmp"
    rm -rf "$stage"
    mv "$image.tmp" "$image"
    mv "$cache/boot-root.env.tmp" "$cache/boot-root.env"
    echo "$key" >"$cache/boot-root.key"
  fi
  # shellcheck source=/dev/null
  . "$cache/boot-root.env"
}

# ---- one boot ------------------------------------------------------------------
# boot_one FILE SEED: boots the root disk image FILE (the raw image or an LSI
# in a mount); sets boot_json to the driver's figures. Fails the run on a
# boot that does not finish, or on bytes that differ from the image's.
boot_one() {
  local file=$1 seed=$2 dev t0 out=$work/boot
  rm -rf "$out" "$work/qemu.pid"
  mkdir -p "$out"
  # Direct I/O, as session_bench.sh: the loop device does not cache the
  # image a second time beside its own page cache.
  dev=$(losetup -r -f --show --direct-io=on "$file")
  devs+=("$dev")
  # A loop device keeps the read_ahead_kb it was last given (by anyone):
  # every boot gets the same, the kernel's default for a new loop device
  # unless LSIFS_BOOT_READ_AHEAD_KB says otherwise. It changes what is read.
  echo "${LSIFS_BOOT_READ_AHEAD_KB:-128}" >"/sys/block/${dev#/dev/}/queue/read_ahead_kb"
  read_ahead_kb=$(cat "/sys/block/${dev#/dev/}/queue/read_ahead_kb")
  printf 'dump /boot/vmlinuz-%s %s\ndump /boot/initrd.img-%s %s\n' \
    "$kver" "$out/vmlinuz" "$kver" "$out/initrd.img" >"$out/debugfs.cmd"
  sync
  echo 3 >/proc/sys/vm/drop_caches
  t0=$(date +%s.%N)
  # As a boot loader: the kernel and initramfs read out of the filesystem
  # (catastrophic mode: no bitmaps, only what the two files need).
  debugfs -c -f "$out/debugfs.cmd" "$dev" >/dev/null 2>"$out/debugfs.err" ||
    fail "debugfs could not read the kernel from $dev: $(tail -1 "$out/debugfs.err")"
  # The guest writes (fsck, journal, logs) go to an overlay in the work dir;
  # the loop device is only its read-only backing file.
  qemu-img create -q -f qcow2 -F raw -b "$dev" "$out/overlay.qcow2"
  python3 "$here/boot_vm.py" --t0 "$t0" --timeout "$boot_timeout" \
    --marker LSIFS-WORKLOAD-DONE --log "$out/console.log" -- \
    qemu-system-x86_64 -machine pc,accel=tcg -m 1024 -smp 1 -nic none \
    -nographic -monitor none -serial stdio -no-reboot -pidfile "$work/qemu.pid" \
    -kernel "$out/vmlinuz" -initrd "$out/initrd.img" \
    -append "root=/dev/vda ro console=ttyS0 panic=-1 lsifs.seed=$seed" \
    -drive "file=$out/overlay.qcow2,format=qcow2,if=virtio" >"$out/result.json" &
  driver=$!
  if ! wait "$driver"; then
    driver=""
    # The work dir goes with the cleanup: keep the console where it can be
    # read, and show its end.
    cp "$out/console.log" "${TMPDIR:-/tmp}/lsifs-boot-failed.console.log" 2>/dev/null || true
    tail -n 15 "$out/console.log" >&2 2>/dev/null || true
    fail "boot of $file (seed $seed) failed; console in ${TMPDIR:-/tmp}/lsifs-boot-failed.console.log"
  fi
  driver=""
  boot_json=$(cat "$out/result.json")
  losetup -d "$dev"
  devs=()  # one boot at a time: this was the only one
  if [ "$(sha "$out/vmlinuz")" != "$vmlinuz_sha" ] || [ "$(sha "$out/initrd.img")" != "$initrd_sha" ]; then
    fail "the kernel or initramfs read through $file differ from the image's"
  fi
  cp "$out/console.log" "$work/last-console.log"
}

# ---- lsifs ---------------------------------------------------------------------
export LSIFS_STORE
start_mount() {  # start_mount MOUNTPOINT OPTIONS
  mkdir -p "$1"
  if [ $net -eq 1 ]; then
    # The first mount records and pulls; the second reads what it pulled.
    net_mount "$site" "$1" site-a "$(sed -E 's/,?origin_(latency|bandwidth)=[^,]*//g' <<<"$2")" ||
      fail "lsifs --region did not mount $1"
    mounts+=("$1")
    return
  fi
  "$bin/lsifs" "$LSIFS_STORE" "$1" -e site-a -f -o "$2" 2>>"$work/lsifs.log" &
  pids+=($!)
  mounts+=("$1")
  for _ in $(seq 100); do mountpoint -q "$1" && break; sleep 0.1; done
  mountpoint -q "$1" || { cat "$work/lsifs.log" >&2; fail "lsifs did not mount $1"; }
}
stop_mounts() {
  local m p
  for m in "${mounts[@]}"; do mountpoint -q "$m" && fusermount3 -u "$m"; done
  for p in "${pids[@]}"; do wait "$p" || true; done
  mounts=() pids=()
  net_down
}
new_store() {  # new_store DIR: a store with the volume imported
  LSIFS_STORE=$1
  "$bin/lsictl" init "$LSIFS_STORE" >/dev/null
  "$bin/lsictl" key create site-a >/dev/null
  # Eviction drops LSIs while the disk has less than free_floor free (a
  # twentieth of it, up to 8 GiB, by default): another job filling this
  # shared disk for a while must not take the baselines between two boots.
  "$bin/lsictl" config set free_floor 1G >/dev/null
  "$bin/lsictl" import vol-boot "$image" >/dev/null 2>&1 || fail "lsictl import of $image failed"
  if [ $net -eq 1 ]; then
    net_up "$2" "$work" || fail "the namespaced network did not come up"
    site=$(net_site "$2" site-a)
  fi
}
# restore: the LSI of a restore, asked where the boots run.
restore() {
  if [ $net -eq 1 ]; then
    field "$(net_lsictl "$site" --json restore -e site-a -v vol-boot)" lsi
  else
    field "$("$bin/lsictl" --json restore -e site-a -v vol-boot)" lsi
  fi
}
field() { python3 -c "import json, sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }
# The boots learned from: sessions of the volume that lsictl access show
# marks learned "yes" (not, say, "no (sequential whole-image read)": a boot
# is no copy, and lsifs's default sequential=skip must not take it for one).
learned_sessions() {
  "$bin/lsictl" --json access show -e site-a -v vol-boot |
    python3 -c "import json, sys; print(sum(s['learned'] == 'yes' for s in json.load(sys.stdin)['sessions']))"
}

rows=$work/rows.jsonl
: >"$rows"
# record P K STRATEGY MOUNTPOINT LSI: a JSON row with the boot's figures and,
# for an LSI, the counters of its session once it has ended.
record() {
  local show="{}"
  [ -n "$5" ] && show=$("$bin/lsictl" lsi show "$5" --json)
  python3 - "$1" "$2" "$3" "$boot_json" "$4" "$5" "$read_ahead_kb" "$show" <<'PY' >>"$rows"
import json, sys
profile, k, strategy, boot, mnt, lsi, ra, show = sys.argv[1:9]
row = {"profile": profile, "k": int(k), "strategy": strategy, "read_ahead_kb": int(ra),
       **json.loads(boot)}
if lsi:
    l = json.loads(show)
    row["lsi"] = lsi
    # What crossed the WAN before the boot: the LSI's delta layers.
    row["layer_bytes"] = l["prefetched_blocks"] * l["block_size"]
    row.update(json.load(open(f"{mnt}/.lsifs/{lsi}.json"))["session_counters"])
print(json.dumps(row))
PY
  echo "  $3: $(field "$boot_json" seconds)s" >&2
}
# boot_lsi MOUNTPOINT LSI SEED: one boot of an LSI; waits for its session to
# end (session_idle=1s after the loop device lets go) so that its counters
# are final and, on the recording mount, the boot is learned.
boot_lsi() {
  if [ $net -eq 1 ]; then
    for _ in $(seq 600); do [ -e "$1/by-id/$2.img" ] && break; sleep 0.1; done
    echo "  (LSI $2 pulled to the site in $(net_wait_pulled "$site" "$2")s)" >&2
  fi
  [ -e "$1/by-id/$2.img" ] ||
    fail "LSI $2 is no longer in $1 (evicted? $(df -h --output=avail "$LSIFS_STORE" | tail -1) free on the store's disk)"
  boot_one "$1/by-id/$2.img" "$3"
  sleep 1.6
  # A recorded boot reaches the region before the next restore is planned.
  if [ $net -eq 1 ] && [ "$1" = "${mounts[0]}" ]; then
    for _ in $(seq 300); do [ "$(learned_sessions)" -ge "$3" ] && break; sleep 0.2; done
  fi
}
# quiet: waits until the recording daemon has no assembly queued or running.
# A session's end queues a pre-assembly of the next restore; left running,
# it would take CPU and link from whichever boot came next.
quiet() {
  local i
  sleep 0.5
  for i in $(seq 2400); do
    [ "$("$bin/lsictl" --json assemblies)" = "[]" ] && return 0
    sleep 0.5
  done
  fail "the daemon's assemblies did not finish within 20 min (lsictl assemblies)"
}

# ---- the smoke run ---------------------------------------------------------------
if [ $smoke -eq 1 ]; then
  guest_smoke
  new_store "$work/store" edge
  start_mount "$work/mnt" "session_idle=1s"
  lsi=$(restore)
  boot_lsi "$work/mnt" "$lsi" 1
  record none 1 lazy "$work/mnt" "$lsi"
  got=$(sed -n 's/.*LSIFS-WORKLOAD-DONE sha256=\([0-9a-f]*\).*/\1/p' "$work/last-console.log")
  [ "$got" = "$payload_sha" ] ||
    fail "the guest read /payload as ${got:-nothing}, the host wrote $payload_sha"
  [ "$(learned_sessions)" -eq 1 ] ||
    fail "the smoke boot was not learned: $("$bin/lsictl" --json access show -e site-a -v vol-boot | python3 -c "import json, sys; print([s['learned'] for s in json.load(sys.stdin)['sessions']])")"
  python3 "$here/b8_report.py" "$rows" "$history" "${json:-}" "${svg:-}" --smoke
  exit 0
fi

# ---- the benchmark ---------------------------------------------------------------
guest_debian
echo "volume: $(du -h --apparent-size "$image" | cut -f1) ext4 image ($(du -h "$image" | cut -f1) used)," \
  "kernel $kver; history $history boots, $held_out held out; profiles $profiles" >&2
for profile in ${profiles//,/ }; do
  wan=$(wan_options "$profile")
  echo "== profile $profile ($wan)" >&2
  new_store "$work/store-$profile" "$profile"
  rec=$work/mnt-rec-$profile base=$work/mnt-base-$profile
  # One mount records (it holds the database) and expands; the other
  # serves the baselines, without recording, expansion or a spill that
  # would carry one lazy boot's fetches into the next.
  start_mount "$rec" "session_idle=1s${wan:+,$wan}"
  start_mount "$base" "session_idle=1s,record=0,expand=off,spill=memory${wan:+,$wan}"
  for k in $(seq 1 "$history"); do
    lsi=$(restore)
    boot_lsi "$rec" "$lsi" "$k"
    record "$profile" "$k" history "$rec" "$lsi"
    quiet
  done
  n=$(learned_sessions)
  [ "$n" -eq "$history" ] ||
    fail "$n of $history history boots were learned under $profile (lsictl access show -e site-a -v vol-boot)"
  lazy=$("$bin/lsictl" preassemble -e site-a -v vol-boot --strategy none 2>/dev/null)
  local_lsi=$("$bin/lsictl" preassemble -e site-a -v vol-boot --strategy full 2>/dev/null)
  "$bin/lsictl" lsi deliver "$lazy" >/dev/null 2>&1
  "$bin/lsictl" lsi deliver "$local_lsi" >/dev/null 2>&1
  quiet
  strategies=(raw local lazy psa+exp)
  for k in $(seq $((history + 1)) $((history + held_out))); do
    echo "held-out boot $k ($profile):" >&2
    # Each boot k runs the strategies in another order (rotated by k), so
    # that none always runs first or after the same one.
    for i in 0 1 2 3; do
      case ${strategies[$(( (i + k) % 4 ))]} in
        raw)
          boot_one "$image" "$k"
          record "$profile" "$k" raw "" "" ;;
        local)
          boot_lsi "$base" "$local_lsi" "$k"
          record "$profile" "$k" local "$base" "$local_lsi" ;;
        lazy)
          boot_lsi "$base" "$lazy" "$k"
          record "$profile" "$k" lazy "$base" "$lazy" ;;
        psa+exp)
          psa=$(restore)
          boot_lsi "$rec" "$psa" "$k"
          record "$profile" "$k" psa+exp "$rec" "$psa"  # recorded: boot k of the history
          quiet ;;
      esac
    done
  done
  n=$(learned_sessions)
  [ "$n" -eq $((history + held_out)) ] ||
    fail "$n of $((history + held_out)) psa+exp boots were learned under $profile"
  stop_mounts
  rm -rf "$work/store-$profile"
done
python3 "$here/b8_report.py" "$rows" "$history" "${json:-}" "${svg:-}"
