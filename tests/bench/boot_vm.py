#!/usr/bin/env python3
"""Runs one qemu boot for boot_bench.sh (B8) and times it from the serial
console.

  boot_vm.py --t0 EPOCH --timeout SECONDS --marker TEXT --log FILE -- QEMU ARGS...

QEMU ARGS must put the guest's serial console on stdout (-nographic with
-serial stdio). Every console line is written to --log with its time since
--t0 (the harness takes t0 before it reads the kernel out of the image, so
that counts too). The boot time is the time of the first line holding
--marker; after it, qemu must exit by itself (the guest powers off) within
the same --timeout, counted from qemu's start. On success prints one JSON
object: seconds (t0 to the marker), exit_seconds (t0 to qemu's exit), the
marker line, and the time of the first line of each boot phase seen.
Exits 3 (and kills qemu, and only it) on a timeout, 4 when qemu exits
without the marker (naming the guest's LSIFS-WORKLOAD-FAIL line if it
printed one), 5 when qemu exits non-zero; one line on stderr says why.
SIGTERM and SIGINT kill qemu too, so the harness's cleanup reaches it.
"""
import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

# First console line of each phase of a boot: where the time goes.
PHASES = [
    ("bios", "SeaBIOS"),
    ("kernel", "Linux version"),
    ("initramfs", "Run /init as init process"),
    ("root_init", ["Run /sbin/init", "systemd[1]", "Welcome to", "LSIFS-SMOKE-INIT"]),
    ("systemd_basic", "Reached target basic.target"),
    ("workload_start", "LSIFS-WORKLOAD-START"),
]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1bc")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--t0", type=float, required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--marker", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.qemu[1:] if a.qemu and a.qemu[0] == "--" else a.qemu
    if not cmd:
        sys.exit("boot_vm.py: no qemu command given")

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)

    def kill_qemu(*_):
        # Only the qemu this driver started: its own child, by pid.
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def on_signal(signum, _frame):
        kill_qemu()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    started = time.time()
    deadline = started + a.timeout
    phases, marker, marker_at, failed = {}, None, None, None
    buf = b""
    fd = proc.stdout.fileno()
    with open(a.log, "w", errors="replace") as log:
        def line_out(raw, at):
            nonlocal marker, marker_at, failed
            # Without systemd's colours and the terminal's control codes, so
            # that the phases match and the log reads plainly.
            text = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\r\n")
            log.write(f"{at - a.t0:9.3f} {text}\n")
            for name, pats in PHASES:
                pats = [pats] if isinstance(pats, str) else pats
                if name not in phases and any(p in text for p in pats):
                    phases[name] = round(at - a.t0, 3)
            if failed is None and "LSIFS-WORKLOAD-FAIL" in text:
                failed = text[text.index("LSIFS-WORKLOAD-FAIL"):]
            if marker is None and a.marker in text:
                marker, marker_at = text[text.index(a.marker):], at

        while True:
            left = deadline - time.time()
            if left <= 0:
                kill_qemu()
                what = "power off after the workload" if marker else f"print {a.marker}"
                print(f"boot_vm.py: the guest did not {what} within {a.timeout:.0f} s "
                      f"(qemu killed; console in {a.log})", file=sys.stderr)
                sys.exit(3)
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            now = time.time()
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line_out(raw, now)
        if buf:
            line_out(buf, time.time())
        rc = proc.wait()
        exited = time.time()
    if marker is None:
        why = f": {failed}" if failed else ""
        print(f"boot_vm.py: qemu exited ({rc}) without the guest printing {a.marker}{why} "
              f"(console in {a.log})", file=sys.stderr)
        sys.exit(4)
    if rc != 0:
        print(f"boot_vm.py: qemu exited with status {rc} (console in {a.log})", file=sys.stderr)
        sys.exit(5)
    print(json.dumps({"seconds": round(marker_at - a.t0, 3),
                      "exit_seconds": round(exited - a.t0, 3),
                      "qemu_start_seconds": round(started - a.t0, 3),
                      "marker": marker, "phases": phases}))


if __name__ == "__main__":
    main()
