#!/usr/bin/env python3
"""B7's helpers for scale_bench.sh: sparse images, timed mounts and opens,
memory of a running lsifs, page-cache eviction, and the report.

  scale_tool.py make-image PATH SIZE BLOCK_SIZE PRESENT EXTENT_BYTES SEED
  scale_tool.py start-lsifs LOG MOUNTPOINT TIMEOUT_S CMD...
  scale_tool.py probe IMAGE PID SIZE BLOCK_SIZE PRESENT EXTENT_BYTES SEED [SETTLE_S]
  scale_tool.py warm DIR
  scale_tool.py evict DIR
  scale_tool.py cpu PID
  scale_tool.py report ROWS.jsonl CATALOG.jsonl MODE REPS JSON_OUT SVG_OUT

The image's present blocks lie in extents of EXTENT_BYTES (as a filesystem
allocates them), spread evenly over the whole volume; every block is
incompressible (a slice of a seeded random pool) and starts with its own
block number, so that probe can check what a read returns without the
image file, which scale_bench.sh deletes once it is imported.
"""
import json
import math
import os
import random
import statistics
import struct
import subprocess
import sys
import time

POOL_BYTES = 16 << 20


def pool(seed):
    return random.Random(seed).randbytes(POOL_BYTES)


def block_bytes(p, seed, block, bs):
    off = (block * 2654435761) % (POOL_BYTES - bs)
    return struct.pack("<QQ", block, seed) + p[off:off + bs - 16]


def extents(size, bs, present, extent_bytes):
    """(first block, length) of each extent, ascending."""
    total = size // bs
    per = max(1, extent_bytes // bs)
    n = (present + per - 1) // per
    if n == 0:
        return []
    if total // n < per:
        sys.exit(f"scale_tool: {present} blocks in extents of {per} do not fit a volume of {total} blocks")
    out = []
    for j in range(n):
        length = per if j < n - 1 else present - per * (n - 1)
        out.append((j * total // n, length))
    return out


def make_image(path, size, bs, present, extent_bytes, seed):
    p = pool(seed)
    ext = extents(size, bs, present, extent_bytes)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        for first, length in ext:
            data = b"".join(block_bytes(p, seed, b, bs) for b in range(first, first + length))
            os.pwrite(fd, data, first * bs)
    finally:
        os.close(fd)
    st = os.stat(path)
    if st.st_blocks * 512 > present * bs + (64 << 20):
        sys.exit(f"scale_tool: {path} is not sparse on this filesystem (set TMPDIR to one with holes)")
    print(json.dumps({"present": present, "extents": len(ext)}))


def start_lsifs(log, mountpoint, timeout, cmd):
    """Starts lsifs (in the foreground, -f), waits for its mountpoint, prints
    'PID MILLISECONDS' (start to mounted). Polls every 0.5 ms: the figure is
    the time to the kernel mount, which is what a client waits for."""
    dev = os.stat(mountpoint).st_dev
    with open(log, "ab") as logf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        deadline = t0 + timeout
        while True:
            try:
                if os.stat(mountpoint).st_dev != dev:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                sys.stderr.write(f"scale_tool: lsifs exited ({proc.returncode}) before mounting; see {log}\n")
                sys.exit(1)
            if time.perf_counter() > deadline:
                proc.terminate()
                sys.exit(f"scale_tool: lsifs did not mount {mountpoint} within {timeout} s")
            time.sleep(0.0005)
        ms = (time.perf_counter() - t0) * 1000
    print(proc.pid, round(ms, 2))


def status(pid):
    """VmRSS and VmHWM (KiB) and the number of threads."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out["VmRSS"], out["VmHWM"], out["Threads"]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe(image, pid, size, bs, present, extent_bytes, seed, settle):
    """Idle memory, then the first open of the image (which loads its
    manifest, layers and base snapshot map), reads of sample blocks checked
    against what was written, and memory while it is open."""
    time.sleep(settle)
    rss_idle, hwm_idle, threads_idle = status(pid)
    ext = extents(size, bs, present, extent_bytes)
    blocks = [b for first, length in ext for b in (first, first + length - 1)]
    # At most 8 present blocks, spread over the volume, and 2 holes.
    step = max(1, len(blocks) // 8)
    sample = sorted(set(blocks[::step] + [blocks[-1]]))
    holes = []
    if ext and ext[0][1] + ext[0][0] < size // bs and (len(ext) == 1 or ext[1][0] > ext[0][0] + ext[0][1]):
        holes.append(ext[0][0] + ext[0][1])
    if size // bs - 1 > ext[-1][0] + ext[-1][1] - 1:
        holes.append(size // bs - 1)
    p = pool(seed)
    t0 = time.perf_counter()
    fd = os.open(image, os.O_RDONLY)
    open_ms = (time.perf_counter() - t0) * 1000
    try:
        # Before any read: what the open loaded (manifest, layers, map). Each
        # FUSE worker that then serves a read sizes a buffer of its own.
        rss_opened, _, threads_opened = status(pid)
        t1 = time.perf_counter()
        for b in sample:
            got = os.pread(fd, bs, b * bs)
            if got != block_bytes(p, seed, b, bs):
                sys.exit(f"scale_tool: block {b} of {image} does not read back as written")
        for b in holes:
            if os.pread(fd, bs, b * bs) != bytes(bs):
                sys.exit(f"scale_tool: absent block {b} of {image} does not read as zeros")
        read_ms = (time.perf_counter() - t1) * 1000
        rss_open, hwm_open, threads_open = status(pid)
    finally:
        os.close(fd)
    print(json.dumps({"rss_idle_kib": rss_idle, "hwm_idle_kib": hwm_idle, "threads_idle": threads_idle,
                      "open_ms": round(open_ms, 3), "rss_opened_kib": rss_opened,
                      "threads_opened": threads_opened, "read_ms": round(read_ms, 3),
                      "rss_open_kib": rss_open, "hwm_open_kib": hwm_open, "threads_open": threads_open,
                      "verified_blocks": len(sample) + len(holes)}))


def store_files(root):
    """Each file under `root`, open for reading (closed after its turn)."""
    for d, _, files in os.walk(root):
        for n in files:
            try:
                fd = os.open(os.path.join(d, n), os.O_RDONLY)
            except OSError:
                continue
            try:
                yield fd
            finally:
                os.close(fd)


def warm(root):
    """Reads what an open reads of the store into the page cache (other
    benchmarks on a shared machine drop caches): every file whole, except
    the ends of big ones (a layer's index is at its end, a snapshot data
    file's header at its start)."""
    edge = 64 << 20
    for fd in store_files(root):
        size = os.fstat(fd).st_size
        spans = [(0, size)] if size <= 2 * edge else [(0, edge), (size - edge, edge)]
        for at, length in spans:
            while length > 0:
                got = os.pread(fd, min(length, 1 << 20), at)
                if not got:
                    break
                at += len(got)
                length -= len(got)


def evict(root):
    """Drops the store's files (and only them) from the page cache: the
    next open reads its snapshot map, manifest and layers from the disk."""
    for fd in store_files(root):
        try:
            os.fsync(fd)  # dirty pages cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


# ---- the report --------------------------------------------------------


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def human_size(n):
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} B"


def slope(points):
    """Exponent k of t ~ n^k between the smallest and the largest n."""
    pts = sorted((n, t) for n, t in points if n and t and t > 0)
    if len(pts) < 2 or pts[0][0] == pts[-1][0]:
        return None
    (n0, t0), (n1, t1) = pts[0], pts[-1]
    return math.log(t1 / t0) / math.log(n1 / n0)


def summarize_rows(raw):
    rows = {}
    for r in raw:
        key = (r["block_size"], r["virtual_bytes"], r["present_blocks"])
        row = rows.setdefault(key, {"block_size": key[0], "virtual_bytes": key[1], "present_blocks": key[2],
                                    "extent_bytes": r.get("extent_bytes"), "runs": []})
        if r["kind"] == "setup":
            row.update({k: v for k, v in r.items() if k not in ("kind",)})
        else:
            row["runs"].append(r)
    out = []
    for key in sorted(rows, key=lambda k: (k[0], k[2], k[1])):
        row = rows[key]
        runs = row.pop("runs")
        row["reps"] = len(runs) // 4 if runs else 0
        row["mount_ms"] = med([r["mount_ms"] for r in runs])
        row["rss_idle_kib"] = med([r["rss_idle_kib"] for r in runs])
        row["threads_idle"] = med([r.get("threads_idle") for r in runs])
        for lsi in ("lazy", "full"):
            sel = [r for r in runs if r["lsi"] == lsi]
            row[lsi] = {
                "open_warm_ms": med([r["open_ms"] for r in sel if r["cache"] == "warm"]),
                "open_cold_ms": med([r["open_ms"] for r in sel if r["cache"] == "cold"]),
                "open_warm_runs_ms": [r["open_ms"] for r in sel if r["cache"] == "warm"],
                "open_cold_runs_ms": [r["open_ms"] for r in sel if r["cache"] == "cold"],
                "rss_opened_kib": med([r.get("rss_opened_kib") for r in sel]),
                "rss_open_kib": med([r["rss_open_kib"] for r in sel]),
                "threads_open": med([r.get("threads_open") for r in sel]),
                "hwm_open_kib": med([r["hwm_open_kib"] for r in sel]),
                "rss_added_kib": med([r["rss_open_kib"] - r["rss_idle_kib"] for r in sel]),
                "read_ms": med([r["read_ms"] for r in sel]),
                "verified_blocks": sum(r["verified_blocks"] for r in sel),
            }
        out.append(row)
    return out


def summarize_catalog(raw):
    groups = {}
    for r in raw:
        groups.setdefault((r["variant"], r["lsis"]), []).append(r)
    out = []
    for (variant, n), rs in sorted(groups.items()):
        c = {"variant": variant, "lsis": n}
        for k in ("list_s", "list_json_s", "restore_s", "restore_reuse_s", "mount_ms", "rss_idle_kib", "ls_by_id_s",
                  "loadavg_1m",
                  "idle_cpu_share", "listed", "delivered_shown"):
            vals = [r[k] for r in rs if k in r]
            if vals:
                c[k] = med(vals)
                c[k + "_runs"] = vals
        out.append(c)
    # Marginal cost per LSI over the empty catalog, and how it grows.
    for variant in {c["variant"] for c in out}:
        cs = sorted((c for c in out if c["variant"] == variant), key=lambda c: c["lsis"])
        base = cs[0] if cs and cs[0]["lsis"] == 0 else None
        for c in cs:
            if not base or c is base:
                continue
            for k, scale in (("list_s", 1e6), ("list_json_s", 1e6), ("restore_s", 1e6), ("restore_reuse_s", 1e6), ("mount_ms", 1e3),
                             ("ls_by_id_s", 1e6)):
                if c.get(k) is not None and base.get(k) is not None:
                    c[k.rsplit("_", 1)[0] + "_us_per_lsi"] = round((c[k] - base[k]) * scale / c["lsis"], 2)
    return out


def catalog_growth(cat):
    """Per variant and operation: the exponent k of (t - t(empty)) ~ N^k
    between the two largest catalogs (1: linear, 2: quadratic)."""
    res = {}
    for variant in sorted({c["variant"] for c in cat}):
        cs = sorted((c for c in cat if c["variant"] == variant), key=lambda c: c["lsis"])
        base = cs[0] if cs and cs[0]["lsis"] == 0 else None
        big = [c for c in cs if c["lsis"] > 0][-2:]
        if not base or len(big) < 2:
            continue
        for k in ("list_s", "list_json_s", "restore_s", "restore_reuse_s", "mount_ms", "ls_by_id_s"):
            pts = [(c["lsis"], c[k] - base[k]) for c in big if c.get(k) is not None and base.get(k) is not None]
            e = slope(pts)
            if e is not None:
                res[f"{variant}:{k}"] = round(e, 2)
    return res


def goals(rows, cat):
    g = {}
    # RSS independent of virtual size: same block size and present blocks,
    # different virtual sizes.
    groups = {}
    for r in rows:
        groups.setdefault((r["block_size"], r["present_blocks"]), []).append(r)
    spreads = []
    for (bs, n), rs in sorted(groups.items()):
        if len({r["virtual_bytes"] for r in rs}) < 2:
            continue
        rs = sorted(rs, key=lambda r: r["virtual_bytes"])
        for lsi in ("lazy", "full"):
            opened = [r[lsi]["rss_opened_kib"] for r in rs]
            if None in opened:
                continue
            lo, hi = min(opened), max(opened)
            spreads.append({"block_size": bs, "present_blocks": n, "lsi": lsi,
                            "rss_opened_kib_by_virtual": {human_size(r["virtual_bytes"]): r[lsi]["rss_opened_kib"]
                                                          for r in rs},
                            "rss_read_kib_by_virtual": {human_size(r["virtual_bytes"]): r[lsi]["rss_open_kib"]
                                                        for r in rs},
                            "threads_by_virtual": {human_size(r["virtual_bytes"]): r[lsi]["threads_open"]
                                                   for r in rs},
                            "spread_kib": hi - lo, "spread_share": round((hi - lo) / lo, 3)})
    # Judged on the RSS with the image open, before reads: what the open
    # loaded. After reads, each FUSE worker thread that served one holds a
    # buffer of (1 MiB / block size + 65) blocks, and how many workers serve
    # a few reads varies from run to run (shown beside, with the threads).
    # Within 10% (or 2 MiB: allocator noise at small sizes) of each other.
    g["rss_vs_virtual"] = {"comparisons": spreads, "judged_on": "RSS with the image open, before reads",
                           "met": all(s["spread_share"] <= 0.10 or s["spread_kib"] <= 2048
                                      for s in spreads) if spreads else None}
    # Open time O(present blocks): the exponent over the block-count series
    # (the largest virtual size with several counts, per block size).
    series = {}
    for r in rows:
        series.setdefault((r["block_size"], r["virtual_bytes"]), []).append(r)
    exps = []
    for (bs, v), rs in sorted(series.items()):
        if len(rs) < 3:
            continue
        rs = sorted(rs, key=lambda r: r["present_blocks"])
        top = rs[-2:]  # the fixed cost of an open hides the slope at small counts
        dn = top[1]["present_blocks"] - top[0]["present_blocks"]
        for lsi in ("lazy", "full"):
            for cache in ("warm", "cold"):
                e = slope([(r["present_blocks"], r[lsi][f"open_{cache}_ms"]) for r in top])
                if e is not None:
                    t0, t1 = (r[lsi][f"open_{cache}_ms"] for r in top)
                    exps.append({"block_size": bs, "virtual_bytes": v, "lsi": lsi, "cache": cache,
                                 "from_blocks": top[0]["present_blocks"], "to_blocks": top[-1]["present_blocks"],
                                 "exponent": round(e, 2),
                                 # What one more present block costs (the fixed
                                 # cost of an open cancels out).
                                 "marginal_us_per_block": round((t1 - t0) * 1000 / dn, 3)})
            r0, r1 = (r[lsi]["rss_opened_kib"] or r[lsi]["rss_open_kib"] for r in top)
            exps.append({"block_size": bs, "virtual_bytes": v, "lsi": lsi, "what": "rss_opened",
                         "from_blocks": top[0]["present_blocks"], "to_blocks": top[-1]["present_blocks"],
                         "marginal_bytes_per_block": round((r1 - r0) * 1024 / dn, 1)})
    opens = [e for e in exps if "cache" in e]
    g["open_vs_present"] = {"series": exps,
                            "met": all(e["exponent"] <= 1.15 for e in opens) if opens else None}
    growth = catalog_growth(cat)
    g["catalog_growth_exponents"] = growth
    g["catalog_not_quadratic"] = {"met": all(v <= 1.3 for v in growth.values()) if growth else None,
                                  "rule": "exponent of (t - t(empty catalog)) ~ N^k between the two largest "
                                          "catalogs <= 1.3"}
    return g


def svg_plot(rows, path):
    """Two log-log panels: lsifs RSS with the image open, and the first
    open's time, against present blocks; one line per (block size, virtual
    size) series, markers for every row."""
    W, H, pad = 980, 430, 64
    pw = (W - 3 * pad) / 2
    ph = H - 2 * pad
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#e377c2"]
    series = {}
    for r in rows:
        series.setdefault((r["block_size"], r["virtual_bytes"]), []).append(r)
    keys = sorted(series)
    def added(r, lsi):  # what the open added to the idle daemon; None if nothing measurable
        v = ((r[lsi]["rss_opened_kib"] or r[lsi]["rss_open_kib"]) - r["rss_idle_kib"]) / 1024
        return v if v > 0 else None

    panels = [("lsifs RSS added by the open (image open, before reads; MiB)", added),
              ("first open() of the image, warm cache (ms)", lambda r, l: r[l]["open_warm_ms"])]
    xs = [r["present_blocks"] for r in rows]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 70}" font-family="sans-serif" '
           f'font-size="12">', f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="15">B7: lsifs against present blocks '
           f'(log-log; solid: LSI with every block in a delta layer, dashed: base only)</text>']

    def lg(v):
        return math.log10(max(v, 1e-9))

    for pi, (title, f) in enumerate(panels):
        x0 = pad + pi * (pw + pad)
        ys = [f(r, l) for r in rows for l in ("lazy", "full") if f(r, l)]
        if not ys or not xs:
            continue
        xlo, xhi = math.floor(lg(min(xs))), math.ceil(lg(max(xs)))
        ylo, yhi = math.floor(lg(min(ys))), math.ceil(lg(max(ys)))
        xhi, yhi = max(xhi, xlo + 1), max(yhi, ylo + 1)

        def px(v):
            return x0 + (lg(v) - xlo) / (xhi - xlo) * pw

        def py(v):
            return pad + ph - (lg(v) - ylo) / (yhi - ylo) * ph

        out.append(f'<rect x="{x0}" y="{pad}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
        out.append(f'<text x="{x0 + pw / 2}" y="{pad - 8}" text-anchor="middle">{title}</text>')
        for e in range(xlo, xhi + 1):
            x = px(10 ** e)
            out.append(f'<line x1="{x}" y1="{pad}" x2="{x}" y2="{pad + ph}" stroke="#ddd"/>')
            out.append(f'<text x="{x}" y="{pad + ph + 16}" text-anchor="middle">10^{e}</text>')
        for e in range(ylo, yhi + 1):
            for m in (1, 2, 5):
                if e == yhi and m > 1:
                    break
                y = py(m * 10 ** e)
                out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + pw}" y2="{y}" stroke="{"#ddd" if m == 1 else "#f0f0f0"}"/>')
                out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end">{m * 10 ** e:g}</text>')
        out.append(f'<text x="{x0 + pw / 2}" y="{pad + ph + 34}" text-anchor="middle">present blocks</text>')
        # O(present blocks): a line of slope 1 through the largest point.
        top = max(rows, key=lambda r: r["present_blocks"])
        if f(top, "full"):
            n1, y1 = top["present_blocks"], f(top, "full")
            n0 = max(10 ** xlo, n1 * 10 ** ylo / y1)  # inside the panel
            out.append(f'<line x1="{px(n0):.1f}" y1="{py(y1 * n0 / n1):.1f}" x2="{px(n1):.1f}" y2="{py(y1):.1f}" '
                       f'stroke="#999" stroke-dasharray="2,3"/>')
            out.append(f'<text x="{px(n0) + 4:.1f}" y="{py(y1 * n0 / n1) - 4:.1f}" fill="#777">slope 1</text>')
        for ci, key in enumerate(keys):
            color = colors[ci % len(colors)]
            rs = sorted(series[key], key=lambda r: r["present_blocks"])
            for lsi, dash in (("full", ""), ("lazy", ' stroke-dasharray="5,4"')):
                pts = [(px(r["present_blocks"]), py(f(r, lsi))) for r in rs if f(r, lsi)]
                if len(pts) > 1:
                    d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                    out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="1.6"{dash}/>')
                for x, y in pts:
                    shape = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>' if lsi == "full" else
                             f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="none" '
                             f'stroke="{color}"/>')
                    out.append(shape)
    # Legend.
    ly = H + 10
    for ci, (bs, v) in enumerate(keys):
        x = pad + (ci % 4) * 230
        y = ly + (ci // 4) * 18
        color = colors[ci % len(colors)]
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{x + 30}" y="{y + 4}">{human_size(v)} virtual, {bs // 1024} KiB blocks</text>')
    out.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


def fmt(v, spec):
    return format(v, spec) if v is not None else "-"


def report(rows_path, cat_path, mode, reps, json_out, svg_out):
    raw_rows = [json.loads(l) for l in open(rows_path) if l.strip()]
    raw_cat = [json.loads(l) for l in open(cat_path) if l.strip()] if os.path.exists(cat_path) else []
    rows = summarize_rows(raw_rows)
    cat = summarize_catalog(raw_cat)
    g = goals(rows, cat)
    judged = mode != "smoke"  # smoke counts are too small for slopes
    g["judged"] = judged

    def verdict(met):
        if met is None:
            return "not measured"
        return ("met" if met else "MISSED") if judged else "not judged in a smoke run"
    print(f"B7 ({mode}): medians of {reps} mounts per figure; open = the image's first open() after a fresh "
          f"mount (warm: store in the page cache; cold: the store's files evicted)")
    print("RSS: idle = after mounting; opened = image open, before reads; read = after reading a few blocks")
    print(f"{'blk':>4} {'virtual':>8} {'present':>8} {'import':>7} {'asm none':>8} {'asm full':>8} {'mount':>6} "
          f"{'RSS idle':>8} | {'lazy LSI: open':>14} {'cold':>7} {'opened':>6} {'read':>6} | "
          f"{'full LSI: open':>14} {'cold':>7} {'opened':>6} {'read':>6}")
    print(f"{'KiB':>4} {'':>8} {'blocks':>8} {'s':>7} {'s':>8} {'s':>8} {'ms':>6} {'MiB':>8} | {'ms':>14} {'ms':>7} "
          f"{'MiB':>6} {'MiB':>6} | {'ms':>14} {'ms':>7} {'MiB':>6} {'MiB':>6}")
    for r in rows:
        lz, fu = r["lazy"], r["full"]
        mib = lambda k: k / 1024 if k is not None else None  # noqa: E731
        print(f"{r['block_size'] // 1024:>4} {human_size(r['virtual_bytes']):>8} {r['present_blocks']:>8} "
              f"{fmt(r.get('import_s'), '7.2f')} {fmt(r.get('assemble_none_s'), '8.3f')} "
              f"{fmt(r.get('assemble_full_s'), '8.2f')} {fmt(r['mount_ms'], '6.1f')} "
              f"{fmt(mib(r['rss_idle_kib']), '8.1f')} | {fmt(lz['open_warm_ms'], '14.2f')} "
              f"{fmt(lz['open_cold_ms'], '7.2f')} {fmt(mib(lz['rss_opened_kib']), '6.1f')} "
              f"{fmt(mib(lz['rss_open_kib']), '6.1f')} | "
              f"{fmt(fu['open_warm_ms'], '14.2f')} {fmt(fu['open_cold_ms'], '7.2f')} "
              f"{fmt(mib(fu['rss_opened_kib']), '6.1f')} {fmt(mib(fu['rss_open_kib']), '6.1f')}")
    if cat:
        print()
        print("catalog: one extension and volume; half the LSIs delivered (medians of "
              f"{reps}; per LSI: over the empty catalog)")
        print(f"{'variant':>7} {'LSIs':>6} {'list s':>7} {'us/LSI':>7} {'--json s':>8} {'us/LSI':>7} "
              f"{'restore s':>9} {'us/LSI':>7} {'reuse s':>7} {'mount ms':>8} {'us/LSI':>7} {'RSS MiB':>7} "
              f"{'ls -l by-id s':>13} {'idle CPU':>8}")
        for c in cat:
            print(f"{c['variant']:>7} {c['lsis']:>6} {fmt(c.get('list_s'), '7.3f')} "
                  f"{fmt(c.get('list_us_per_lsi'), '7.1f')} {fmt(c.get('list_json_s'), '8.3f')} "
                  f"{fmt(c.get('list_json_us_per_lsi'), '7.1f')} {fmt(c.get('restore_s'), '9.3f')} "
                  f"{fmt(c.get('restore_us_per_lsi'), '7.1f')} {fmt(c.get('restore_reuse_s'), '7.3f')} "
                  f"{fmt(c.get('mount_ms'), '8.1f')} "
                  f"{fmt(c.get('mount_us_per_lsi'), '7.1f')} "
                  f"{fmt(c['rss_idle_kib'] / 1024 if c.get('rss_idle_kib') else None, '7.1f')} "
                  f"{fmt(c.get('ls_by_id_s'), '13.3f')} "
                  f"{fmt(c['idle_cpu_share'] * 100 if c.get('idle_cpu_share') is not None else None, '7.1f')}%")
    print()
    rv = g["rss_vs_virtual"]
    for s in rv["comparisons"]:
        print(f"RSS vs virtual size ({s['block_size'] // 1024} KiB blocks, {s['present_blocks']} present, "
              f"{s['lsi']} LSI), opened / after reads (threads): " +
              ", ".join(f"{k}: {v / 1024:.1f} / {s['rss_read_kib_by_virtual'][k] / 1024:.1f} MiB "
                        f"({s['threads_by_virtual'][k]:g})"
                        for k, v in s["rss_opened_kib_by_virtual"].items()))
    if rows:
        print(f"goal: RSS independent of virtual size (image open, before reads: within 10% or 2 MiB): "
              f"{verdict(rv['met'])}")
    for e in g["open_vs_present"]["series"]:
        if "cache" in e:
            print(f"open time ~ present^{e['exponent']} ({e['block_size'] // 1024} KiB blocks, "
                  f"{human_size(e['virtual_bytes'])}, {e['lsi']} LSI, {e['cache']}, {e['from_blocks']}->{e['to_blocks']} "
                  f"blocks; {e['marginal_us_per_block']} us per added block)")
        else:
            print(f"RSS with the image open (before reads): {e['marginal_bytes_per_block']} bytes per added block "
                  f"({e['block_size'] // 1024} KiB blocks, {human_size(e['virtual_bytes'])}, {e['lsi']} LSI, "
                  f"{e['from_blocks']}->{e['to_blocks']} blocks)")
    if rows:
        print(f"goal: open time O(present blocks) (exponent <= 1.15): "
              f"{verdict(g['open_vs_present']['met'])}")
    for k, v in g["catalog_growth_exponents"].items():
        print(f"catalog {k}: (t - t(empty)) ~ N^{v}")
    if cat:
        print(f"goal: catalog operations not quadratic (exponent <= 1.3): "
              f"{verdict(g['catalog_not_quadratic']['met'])}")
    res = {"benchmark": "B7", "mode": mode, "reps": int(reps), "machine": {"cpus": os.cpu_count()},
           "rows": rows, "catalog": cat, "goals": g}
    if json_out:
        with open(json_out, "w") as fh:
            fh.write(json.dumps(res, indent=1) + "\n")
    if svg_out:
        svg_plot(rows, svg_out)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make-image":
        make_image(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]), int(args[5]))
    elif cmd == "start-lsifs":
        start_lsifs(args[0], args[1], float(args[2]), args[3:])
    elif cmd == "probe":
        probe(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]), int(args[5]), int(args[6]),
              float(args[7]) if len(args) > 7 else 1.0)
    elif cmd == "warm":
        warm(args[0])
    elif cmd == "evict":
        evict(args[0])
    elif cmd == "cpu":
        print(cpu_seconds(int(args[0])))
    elif cmd == "report":
        report(*args[:6])
    else:
        sys.exit(f"scale_tool: unknown command {cmd}")


if __name__ == "__main__":
    main()
