#!/usr/bin/env python3
"""Load with verification (issue 12): many readers of a real lsifs mount,
every byte they read checked, while the store changes under them.

Readers: random preads (1 byte to 1 MiB) of every delivered image, checked
against the raw image the snapshot was imported from; and loop devices with
the ext4 inside mounted, every file read and checked against the tree it was
built from. Meanwhile: restores (the volume image moves to a new LSI),
pre-assemblies, drops of LSIs (open ones too), eviction under a small cap,
and hydration, all under the WAN model. Every second: the daemon's RSS, open
descriptors and the store's bytes.

Passes when no byte read is wrong, no read fails, nothing hangs, RSS stays
within the configured caches (one cache for all images) plus a fixed
allowance, and once every image is closed and its session has ended the
daemon holds no file of a dropped LSI and their space is back.

usage: load_test.py BIN_DIR [--seconds N] [--json FILE]   (root)
"""
import argparse
import hashlib
import json
import mmap
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

CACHE_MB = 16
# The daemon without its cache: code, heap, 80 worker stacks (touched
# pages), LevelDB, and per image the block maps and the spill's state.
RSS_ALLOWANCE_MB = 160


def run(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class Load:
    def __init__(self, bin_dir, seconds):
        self.bin = bin_dir
        self.seconds = seconds
        self.work = tempfile.mkdtemp(prefix="lsifs-load.", dir=os.environ.get("TMPDIR", "/var/tmp"))
        self.store = os.path.join(self.work, "store")
        self.mnt = os.path.join(self.work, "mnt")
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.bytes_verified = 0
        self.reads = 0
        self.wrong = []
        self.errors = []
        self.samples = []
        self.loops = []
        self.inner = []
        self.daemon = None
        self.ops = {"restore": 0, "preassemble": 0, "drop": 0, "gc": 0}

    def lsictl(self, *args, check=True):
        return run(os.path.join(self.bin, "lsictl"), "-s", self.store, *args, check=check)

    def note_error(self, what):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(what)

    # --- set-up -----------------------------------------------------------
    def setup(self):
        os.makedirs(self.mnt)
        # A small cap: eviction runs often, beside the readers.
        run(os.path.join(self.bin, "lsictl"), "init", self.store, "--block-size", "64K",
            "--lsi-cap", "48M")
        self.lsictl("key", "create", "site-a")
        self.images = {}
        for vol, src in (("vol-a", "/usr/share/common-licenses"), ("vol-b", "/etc")):
            tree = os.path.join(self.work, "tree-" + vol)
            shutil.copytree(src, tree, symlinks=True, ignore_dangling_symlinks=True,
                            dirs_exist_ok=True)
            with open(os.path.join(tree, "random.bin"), "wb") as f:
                f.write(os.urandom(6 << 20))
            img = os.path.join(self.work, vol + ".img")
            with open(img, "wb") as f:
                f.truncate(64 << 20)
            run("mke2fs", "-q", "-t", "ext4", "-d", tree, img)
            self.lsictl("import", vol, img)
            self.lsictl("restore", "-e", "site-a", "-v", vol)
            with open(img, "rb") as f:
                self.images[vol] = f.read()
            self.trees = getattr(self, "trees", {})
            self.trees[vol] = self.tree_digests(tree)
        log = open(os.path.join(self.work, "lsifs.log"), "w")
        self.daemon = subprocess.Popen(
            [os.path.join(self.bin, "lsifs"), self.store, self.mnt, "-e", "site-a", "-f", "-o",
             "origin_latency=2ms,origin_bandwidth=1Gbit,cache_size=%dM,hydrate=on,"
             "session_idle=1s,busy=refuse" % CACHE_MB],
            stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if os.path.ismount(self.mnt):
                return
            time.sleep(0.05)
        raise RuntimeError("lsifs did not mount")

    @staticmethod
    def tree_digests(root):
        out = {}
        for d, _, files in os.walk(root):
            for name in files:
                p = os.path.join(d, name)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
        return out

    def manifest_volume(self, lsi):
        out = self.lsictl("--json", "lsi", "show", lsi, check=False).stdout
        try:
            return json.loads(out)["volume"]
        except (ValueError, KeyError):
            return None

    # --- readers ----------------------------------------------------------
    def random_reader(self, seed, direct):
        """Random preads; `direct`: O_DIRECT, 4 KiB-aligned, so that every
        read reaches the daemon rather than the page cache."""
        rng = random.Random(seed)
        buf = mmap.mmap(-1, 1 << 20)
        while not self.stop.is_set():
            names = [n for n in os.listdir(os.path.join(self.mnt, "by-id")) if n.endswith(".img")]
            if not names:
                time.sleep(0.05)
                continue
            lsi = rng.choice(names)[:-4]
            vol = self.manifest_volume(lsi)
            if vol is None:
                continue  # dropped meanwhile
            try:
                fd = os.open(os.path.join(self.mnt, "by-id", lsi + ".img"),
                             os.O_RDONLY | (os.O_DIRECT if direct else 0))
            except FileNotFoundError:
                continue  # dropped between listing and open: not an error
            src = self.images[vol]
            try:
                for _ in range(rng.randint(20, 200)):
                    size = rng.choice([1, 512, 4096, 65536, 1 << 20, rng.randint(1, 300000)])
                    off = rng.randrange(0, len(src))
                    if direct:
                        size = max(4096, size // 4096 * 4096)
                        off = off // 4096 * 4096
                    try:
                        if direct:
                            n = os.preadv(fd, [memoryview(buf)[:size]], off)
                            got = bytes(buf[:n])
                        else:
                            got = os.pread(fd, size, off)
                    except OSError as e:
                        self.note_error("pread %s@%d+%d: %s" % (lsi, off, size, e))
                        continue
                    want = src[off:off + size]
                    with self.lock:
                        self.reads += 1
                        if got != want:
                            self.wrong.append("%s@%d+%d" % (lsi, off, size))
                        else:
                            self.bytes_verified += len(got)
                    if self.stop.is_set():
                        break
            finally:
                os.close(fd)

    def ext4_reader(self, vol):
        """A loop device on the volume image, the ext4 inside mounted, every
        file read and checked, over and over."""
        want = self.trees[vol]
        while not self.stop.is_set():
            image = os.path.join(self.mnt, vol + ".img")
            if not os.path.exists(image):
                # Evicted while no loop device held it: restore it, as a
                # site would.
                self.lsictl("restore", "-e", "site-a", "-v", vol, check=False)
                time.sleep(0.3)
                continue
            try:
                dev = run("losetup", "-r", "-f", "--show", image).stdout.strip()
            except subprocess.CalledProcessError as e:
                self.note_error("losetup %s: %s" % (vol, e.stderr.strip()))
                time.sleep(0.5)
                continue
            with self.lock:
                self.loops.append(dev)
            inner = tempfile.mkdtemp(prefix="inner.", dir=self.work)
            try:
                run("mount", "-o", "ro,noload", dev, inner)
                with self.lock:
                    self.inner.append(inner)
                for rel, digest in want.items():
                    with open(os.path.join(inner, rel), "rb") as f:
                        data = f.read()
                    with self.lock:
                        self.reads += 1
                        if hashlib.sha256(data).hexdigest() != digest:
                            self.wrong.append("%s:%s" % (vol, rel))
                        else:
                            self.bytes_verified += len(data)
                    if self.stop.is_set():
                        break
            except (OSError, subprocess.CalledProcessError) as e:
                self.note_error("ext4 %s: %s" % (vol, e))
            finally:
                self.unmount(inner)
                run("losetup", "-d", dev, check=False)
                with self.lock:
                    if inner in self.inner:
                        self.inner.remove(inner)
                    self.loops.remove(dev)

    def unmount(self, path):
        """Unmounts an inner ext4 whatever happens: a moment's EBUSY (a
        probe of the device) is waited out, then the unmount is made lazy,
        so that no mount and no loop device outlive the test."""
        for _ in range(20):
            r = run("umount", path, check=False)
            if r.returncode == 0 or not os.path.ismount(path):
                return
            time.sleep(0.1)
        self.note_error("umount %s: %s" % (path, r.stderr.strip()))
        run("umount", "-l", path, check=False)

    # --- the store changing underneath -----------------------------------
    def operator(self):
        rng = random.Random(7)
        while not self.stop.is_set():
            action = rng.choice(["restore", "preassemble", "drop", "gc"])
            vol = rng.choice(["vol-a", "vol-b"])
            self.ops[action] += 1
            if action == "restore":
                self.lsictl("restore", "-e", "site-a", "-v", vol, check=False)
            elif action == "preassemble":
                self.lsictl("preassemble", "-e", "site-a", "-v", vol, "--priority", "low",
                            check=False)
            elif action == "drop":
                listing = json.loads(self.lsictl("--json", "lsi", "list").stdout or "[]")
                # Never the volume images the ext4 readers use.
                old = [e["lsi"] for e in listing if not e.get("alias")]
                if old:
                    self.lsictl("lsi", "drop", rng.choice(old), check=False)
            else:
                self.lsictl("gc", check=False)
            time.sleep(rng.uniform(0.2, 1.0))

    def sampler(self):
        start = time.time()
        while not self.stop.is_set():
            self.samples.append(self.sample(time.time() - start))
            time.sleep(1)

    def sample(self, t):
        pid = self.daemon.pid
        rss = 0
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) // 1024
        fds = len(os.listdir("/proc/%d/fd" % pid))
        store = 0
        for d, _, files in os.walk(self.store):
            for name in files:
                try:
                    store += os.stat(os.path.join(d, name)).st_blocks * 512
                except FileNotFoundError:
                    pass
        return {"t": round(t, 1), "rss_mb": rss, "fds": fds, "store_mb": store >> 20}

    # --- the run ----------------------------------------------------------
    def run(self):
        self.setup()
        threads = [threading.Thread(target=self.random_reader, args=(i, i % 2 == 0))
                   for i in range(4)]
        threads += [threading.Thread(target=self.ext4_reader, args=(v,)) for v in ("vol-a", "vol-b")]
        threads += [threading.Thread(target=self.operator), threading.Thread(target=self.sampler)]
        for t in threads:
            t.start()
        time.sleep(self.seconds)
        self.stop.set()
        for t in threads:
            t.join(timeout=120)
            if t.is_alive():
                self.errors.append("a thread hung: %s" % t.name)
        # Every image closed: after the session idle time the daemon holds
        # no file of a dropped LSI, and their space is back.
        time.sleep(3)
        held = []
        for fd in os.listdir("/proc/%d/fd" % self.daemon.pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (self.daemon.pid, fd))
            except OSError:
                continue
            if "(deleted)" in target:
                held.append(target)
        final = self.sample(self.seconds + 3)
        return held, final

    def teardown(self):
        for inner in list(self.inner):
            self.unmount(inner)
        for dev in list(self.loops):
            run("losetup", "-d", dev, check=False)
        if self.daemon is not None:
            run("fusermount3", "-u", self.mnt, check=False)
            try:
                self.daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                run("fusermount3", "-u", "-z", self.mnt, check=False)
                self.daemon.kill()
                self.daemon.wait()
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin_dir")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("load_test.py: needs root (FUSE, loop devices, mount)")
    load = Load(a.bin_dir, a.seconds)
    signal.signal(signal.SIGTERM, lambda *_: load.stop.set())
    try:
        held, final = load.run()
    finally:
        load.teardown()
    max_rss = max(s["rss_mb"] for s in load.samples + [final])
    result = {
        "seconds": a.seconds, "reads": load.reads, "bytes_verified": load.bytes_verified,
        "wrong": load.wrong[:20], "errors": load.errors, "cache_mb": CACHE_MB,
        "max_rss_mb": max_rss, "final": final, "held_deleted_files": held, "operations": load.ops,
        "samples": load.samples,
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    print("load: %.0f s, %d reads, %.1f MiB verified, %d wrong, %d errors, RSS max %d MiB "
          "(cache %d MiB), fds at end %d, deleted files held %d; operations %s"
          % (a.seconds, load.reads, load.bytes_verified / 2**20, len(load.wrong), len(load.errors),
             max_rss, CACHE_MB, final["fds"], len(held), load.ops))
    problems = []
    if load.wrong:
        problems.append("wrong bytes: %s" % load.wrong[:5])
    if load.errors:
        problems.append("errors: %s" % load.errors[:5])
    if max_rss > CACHE_MB + RSS_ALLOWANCE_MB:
        problems.append("RSS %d MiB over the cache plus allowance" % max_rss)
    if held:
        problems.append("dropped files still held: %s" % held[:5])
    if load.bytes_verified == 0:
        problems.append("nothing was verified")
    if problems:
        sys.exit("load_test.py: FAILED: " + "; ".join(problems))


if __name__ == "__main__":
    main()
