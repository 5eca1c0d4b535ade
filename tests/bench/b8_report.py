#!/usr/bin/env python3
"""B8's figures from boot_bench.sh's boots: one JSON line per (profile, boot,
strategy) with its time to the workload's marker, the console's phases and,
for an LSI, its session counters. Prints the table, checks the goals, writes
JSON and an SVG bar chart.

  b8_report.py ROWS HISTORY [JSON|""] [SVG|""] [--smoke]
"""
import json
import math
import statistics
import sys

args = [a for a in sys.argv[1:] if a != "--smoke"]
smoke = "--smoke" in sys.argv[1:]
rows_path, history = args[0], int(args[1])
out = args[2] if len(args) > 2 else ""
svg = args[3] if len(args) > 3 else ""
runs = [json.loads(l) for l in open(rows_path) if l.strip()]
ORDER = ["raw", "local", "lazy", "psa+exp"]
PHASES = ["bios", "kernel", "initramfs", "root_init", "systemd_basic", "workload_start"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f(x, fmt):  # a figure, or "-" in the same width when there is none
    return format(x, fmt) if x is not None else "-".rjust(int("0" + fmt.split(".")[0]))


def wan(r):  # bytes that crossed the WAN for this boot: its layers, then its fetches
    return r.get("layer_bytes", 0) + r.get("origin_bytes", 0) if "lsi" in r else 0


if smoke:
    r = runs[0]
    print(f"B8 smoke: booted through lsifs in {r['seconds']:.1f} s (qemu exited at "
          f"{r['exit_seconds']:.1f} s); {r.get('blocks_read', '?')} blocks read, "
          f"{r.get('origin_bytes', 0) / 1e6:.1f} MB from the origin; {r['marker']}")
    if out:
        with open(out, "w") as fh:
            json.dump({"smoke": True, "boots": runs}, fh, indent=1)
    sys.exit(0)

profiles = []
for r in runs:
    if r["profile"] not in profiles:
        profiles.append(r["profile"])
res = {"history_boots": history, "profiles": {}, "boots": runs}
for p in profiles:
    held = [r for r in runs if r["profile"] == p and r["strategy"] != "history"]
    by_k = {}
    for r in held:
        by_k.setdefault(r["k"], {})[r["strategy"]] = r
    pr = {"held_out_boots": len(by_k), "strategies": {}, "ratios": {}}
    for s in ORDER:
        rs = [v[s] for _, v in sorted(by_k.items()) if s in v]
        if not rs:
            continue
        pr["strategies"][s] = {
            "boots": len(rs),
            "seconds": med([r["seconds"] for r in rs]),
            "seconds_min": min(r["seconds"] for r in rs),
            "seconds_max": max(r["seconds"] for r in rs),
            "wan_bytes": med([wan(r) for r in rs]),
            "origin_bytes": med([r.get("origin_bytes", 0) for r in rs]),
            "layer_bytes": med([r.get("layer_bytes", 0) for r in rs]),
            "no_wait_share": med([r.get("no_wait_share") for r in rs]),
            "blocks_read": med([r.get("blocks_read") for r in rs]),
            "waited_blocks": med([r.get("waited_blocks") for r in rs]),
            "phases": {"extract": med([r["qemu_start_seconds"] for r in rs]),
                       **{ph: med([r["phases"].get(ph) for r in rs]) for ph in PHASES}},
        }

    # Ratios of boots run side by side (same k), then their median.
    def ratio(a, b):
        xs = [v[a]["seconds"] / v[b]["seconds"] for v in by_k.values()
              if a in v and b in v and v[b]["seconds"]]
        return med(xs)

    pr["ratios"] = {"psa+exp/local": ratio("psa+exp", "local"),
                    "lazy/psa+exp": ratio("lazy", "psa+exp"),
                    "local/raw": ratio("local", "raw"),
                    "lazy/local": ratio("lazy", "local")}
    hist = [r for r in runs if r["profile"] == p and r["strategy"] == "history"]
    pr["history_seconds"] = [r["seconds"] for r in sorted(hist, key=lambda r: r["k"])]
    res["profiles"][p] = pr

goals = {}
if "edge" in res["profiles"]:
    x = res["profiles"]["edge"]["ratios"]["psa+exp/local"]
    goals["edge psa+exp/local <= 1.1"] = {"value": x, "met": x is not None and x <= 1.1}
if "constrained" in res["profiles"]:
    x = res["profiles"]["constrained"]["ratios"]["lazy/psa+exp"]
    goals["constrained lazy/psa+exp >= 4"] = {"value": x, "met": x is not None and x >= 4}
res["goals"] = goals
ra = sorted({r.get("read_ahead_kb") for r in runs})
res["loop_read_ahead_kb"] = ra

for p, pr in res["profiles"].items():
    hs = ", ".join(f"{s:.0f}" for s in pr["history_seconds"]) or "-"
    print(f"B8 ({p}): time from start to the workload's end, medians over "
          f"{pr['held_out_boots']} held-out boots (history {history} boots: {hs} s)")
    print(f"{'strategy':9} {'time s':>7} {'min':>7} {'max':>7} {'WAN MB':>8} {'fetched MB':>10} "
          f"{'no_wait':>7} {'extract':>7} {'kernel':>7} {'init':>7} {'systemd':>7} {'workload':>8}")
    for s, v in pr["strategies"].items():
        ph = v["phases"]
        print(f"{s:9} {f(v['seconds'], '7.1f')} {f(v['seconds_min'], '7.1f')} "
              f"{f(v['seconds_max'], '7.1f')} {f(v['wan_bytes'] / 1e6, '8.1f')} "
              f"{f(v['origin_bytes'] / 1e6, '10.1f')} {f(v['no_wait_share'], '7.3f')} "
              f"{f(ph.get('extract'), '7.1f')} {f(ph.get('kernel'), '7.1f')} {f(ph.get('initramfs'), '7.1f')} "
              f"{f(ph.get('root_init'), '7.1f')} {f(ph.get('workload_start'), '8.1f')}")
    r = pr["ratios"]
    print("ratios (median of side-by-side boots): " + ", ".join(
        f"{k} {f(v, '.2f')}" for k, v in r.items()))
print("phase columns (medians): seconds from start to qemu's start (the kernel and initramfs "
      "read out of the image), to the first console line of the kernel, the initramfs's /init, "
      "systemd, and the workload's start")
for g, v in goals.items():
    print(f"goal {g}: {f(v['value'], '.2f')} {'met' if v['met'] else 'MISSED'}")
print(f"loop device read_ahead_kb: {', '.join(map(str, ra))}")

if out:
    with open(out, "w") as fh:
        json.dump(res, fh, indent=1)

if svg:
    # Bars: median boot time per strategy, grouped by profile; whiskers from
    # the fastest to the slowest boot. Log scale when the spread is large.
    colors = {"raw": "#95a5a6", "local": "#2980b9", "lazy": "#7f8c8d", "psa+exp": "#c0392b"}
    vals = [v[k] for pr in res["profiles"].values() for v in pr["strategies"].values()
            for k in ("seconds_min", "seconds_max") if v[k]]
    lo, hi = min(vals), max(vals)
    log = hi / lo > 8
    W, H, pad_l, pad_b, top = max(720, 120 + 300 * len(res["profiles"])), 420, 70, 60, 50
    ph = H - pad_b - top
    if log:
        vmin = 10 ** math.floor(math.log10(lo))
        vmax = 10 ** math.ceil(math.log10(hi * 1.05))

        def y(v):
            return H - pad_b - ph * (math.log10(v) - math.log10(vmin)) / (
                math.log10(vmax) - math.log10(vmin))
        ticks = []
        d = vmin
        while d <= vmax:
            ticks += [d * m for m in (1, 2, 5) if d * m <= vmax]
            d *= 10
    else:
        vmin, vmax = 0, hi * 1.1

        def y(v):
            return H - pad_b - ph * v / vmax
        # A round step (1, 2 or 5 times a power of ten) for at most 8 ticks.
        mag = 10 ** math.floor(math.log10(vmax / 8))
        step = next(m * mag for m in (1, 2, 5, 10) if vmax / (m * mag) <= 8)
        ticks = [i * step for i in range(int(vmax / step) + 1)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'font-family="sans-serif" font-size="12">',
             f'<text x="10" y="22" font-weight="bold">B8: seconds from start to the boot '
             f'workload\'s end ({"log scale; " if log else ""}bars: median, lines: min to max)</text>']
    for t in ticks:
        parts.append(f'<line x1="{pad_l}" y1="{y(t):.1f}" x2="{W - 10}" y2="{y(t):.1f}" '
                     f'stroke="#ddd"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    bw = 55
    for gi, (p, pr) in enumerate(res["profiles"].items()):
        x0 = pad_l + 20 + gi * 300
        for i, (s, v) in enumerate(pr["strategies"].items()):
            x = x0 + i * (bw + 10)
            yv = y(v["seconds"])
            parts.append(f'<rect x="{x}" y="{yv:.1f}" width="{bw}" '
                         f'height="{H - pad_b - yv:.1f}" fill="{colors.get(s, "#555")}"/>')
            cx = x + bw / 2
            parts.append(f'<line x1="{cx}" y1="{y(v["seconds_min"]):.1f}" x2="{cx}" '
                         f'y2="{y(v["seconds_max"]):.1f}" stroke="black"/>')
            parts.append(f'<text x="{cx + 4}" y="{min(yv, y(v["seconds_max"])) - 5:.1f}" '
                         f'text-anchor="start">{v["seconds"]:.0f}</text>')
            parts.append(f'<text x="{cx}" y="{H - pad_b + 15}" text-anchor="middle">{s}</text>')
        r = pr["ratios"]
        parts.append(f'<text x="{x0}" y="{H - pad_b + 35}" font-weight="bold">{p}</text>')
        parts.append(f'<text x="{x0}" y="{H - pad_b + 50}">psa+exp/local '
                     f'{f(r["psa+exp/local"], ".2f")}, lazy/psa+exp {f(r["lazy/psa+exp"], ".1f")}</text>')
    parts.append(f'<line x1="{pad_l}" y1="{H - pad_b}" x2="{W - 10}" y2="{H - pad_b}" stroke="black"/>')
    parts.append("</svg>")
    with open(svg, "w") as fh:
        fh.write("\n".join(parts) + "\n")
