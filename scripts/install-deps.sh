#!/usr/bin/env bash
# Installs every Debian 12 package lsifs needs to build, test and benchmark.
# Run as root on a fresh machine; safe to run again.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it uses apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential cmake pkg-config ninja-build ccache
  libfuse3-dev fuse3
  libsystemd-dev systemd bash-completion
  libssl-dev openssl
  libleveldb-dev libsnappy-dev
  libboost1.81-dev libboost-program-options1.81-dev libboost-json1.81-dev
  libgtest-dev googletest
  libpng-dev
  e2fsprogs util-linux kmod
  fio python3 strace curl
  qemu-system-x86 qemu-utils busybox-static cpio debootstrap
  clang
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # Another apt or dpkg (unattended-upgrades, a provisioning script) may hold
  # the lock: wait for it rather than fail.
  apt=(apt-get -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update -qq
  "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi
