#!/usr/bin/env bash
# lsifs@.service under a real systemd, by hand (not in CI: it downloads a
# Debian base system and boots it, a few minutes). A Debian 12 system is
# made with debootstrap in WORKDIR, lsifs is installed into it with
# cmake --install, a store with an ext4 image is made, and the container is
# booted with systemd-nspawn. Inside, the unit is started (Type=notify), the
# image read, lsictl status and /metrics asked, then the unit is stopped
# while a reader holds the image: the stop must wait (no SIGKILL), the
# reader go on reading, and the mount go once the reader closes. The
# container writes what it saw to WORKDIR/root/check.log and powers off.
#   usage: tests/integration/systemd_boot_check.sh BUILD_DIR [WORKDIR]
# Needs root, debootstrap, systemd-container (systemd-nspawn), /dev/fuse.
set -euo pipefail
build=$(realpath "${1:?usage: systemd_boot_check.sh BUILD_DIR [WORKDIR]}")
root=${2:-/var/tmp/lsifs-sysroot}
for tool in debootstrap systemd-nspawn mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "systemd_boot_check.sh: needs $tool" >&2; exit 2; }
done
if [ ! -x "$root/lib/systemd/systemd" ]; then
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,fuse3,libfuse3-3,libleveldb1d,libboost-json1.81.0,libboost-program-options1.81.0,libssl3,libpng16-16,libsystemd0,e2fsprogs,util-linux,procps,curl,kmod \
    bookworm "$root"
fi
DESTDIR=$root cmake --install "$build" --prefix /usr/local >/dev/null
lsictl=$build/mount-tools/lsictl
rm -rf "$root/srv/lsifs" "$root/srv/image.img" "$root/root/check.log"
"$lsictl" init "$root/srv/lsifs" >/dev/null
"$lsictl" -s "$root/srv/lsifs" key create site-a >/dev/null
mkfs.ext4 -q -d /usr/share/doc/bash "$root/srv/image.img" 32M
"$lsictl" -s "$root/srv/lsifs" import vol "$root/srv/image.img" >/dev/null 2>&1
"$lsictl" -s "$root/srv/lsifs" restore -e site-a -v vol >/dev/null 2>&1
mkdir -p "$root/srv/lsi/site-a" "$root/etc/lsifs/srv/lsi"
cat >"$root/etc/lsifs/srv/lsi/site-a.conf" <<'CONF'
LSIFS_STORE=/srv/lsifs
LSIFS_EXTENSION=site-a
LSIFS_OPTIONS=origin_latency=20ms,metrics=127.0.0.1:9464
CONF
cat >"$root/root/check.sh" <<'CHECK'
#!/bin/bash
exec >/root/check.log 2>&1
set -x
unit="lsifs@$(systemd-escape --path /srv/lsi/site-a).service"
systemctl start "$unit"; echo "start rc=$?"
systemctl show -p Type -p MainPID -p StatusText "$unit"
md5sum /srv/lsi/site-a/vol.img /srv/image.img
/usr/local/bin/lsictl status /srv/lsi/site-a
curl -s http://127.0.0.1:9464/metrics | grep -E '^lsifs_lsi_reads_total|^lsifs_origin_wait_seconds_count'
exec 7</srv/lsi/site-a/vol.img
systemctl stop "$unit" 7<&- &
stopper=$!
sleep 4
echo "while a reader holds the image: $(systemctl is-active "$unit")"
systemctl status --no-pager "$unit" | sed -n 1,12p
md5sum <&7 | sed 's/^/reader still reads: /'
exec 7<&-
wait "$stopper"; echo "stop rc=$?"
echo "after the reader closed: $(systemctl is-active "$unit")"
echo "lsifs mounts left: $(mount | grep -c fuse.lsifs)"
journalctl -u "$unit" --no-pager | tail -12
systemctl poweroff --no-block
CHECK
chmod +x "$root/root/check.sh"
cat >"$root/etc/systemd/system/lsifs-check.service" <<'UNIT'
[Unit]
Description=lsifs service check
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/check.sh
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/lsifs-check.service \
  "$root/etc/systemd/system/multi-user.target.wants/lsifs-check.service"
# --register=no --keep-unit: the host need not run systemd.
timeout 300 systemd-nspawn -q --register=no --keep-unit -D "$root" -b --bind=/dev/fuse \
  --capability=CAP_SYS_ADMIN >/dev/null 2>&1 || true
cat "$root/root/check.log"
grep -q "while a reader holds the image: deactivating" "$root/root/check.log" &&
  grep -q "after the reader closed: inactive" "$root/root/check.log" &&
  grep -q "lsifs mounts left: 0" "$root/root/check.log" &&
  echo "systemd boot check: passed" || { echo "systemd boot check: FAILED" >&2; exit 1; }
