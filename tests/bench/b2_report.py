#!/usr/bin/env python3
"""B2 across profiles: session_bench.sh's JSON of each profile (one run
each; every strategy side by side within it) merged into one table, one JSON
and one bar chart of the median session time per strategy and profile.

  b2_report.py OUT.json OUT.svg B3-PROFILE.json...
"""
import json
import math
import sys

out, svg, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = [json.load(open(p)) for p in inputs]
order = ["lazy", "full", "local", "replay", "psa", "psa+exp", "oracle"]
profiles = [r["profile"] for r in runs]
res = {"tree": runs[0]["tree"], "profiles": {}}
for r in runs:
    res["profiles"][r["profile"]] = {
        "held_out_sessions": r["held_out_sessions"],
        "seconds": {s: v["seconds"] for s, v in r["strategies"].items()},
        "time_over_oracle": {s: v["time_over_oracle"] for s, v in r["strategies"].items()},
        "b2": r.get("b2"),
    }


def f(x, fmt):
    return format(x, fmt) if x is not None else "-"


print(f"B2 ({res['tree']}): median session seconds (and over the oracle's), "
      f"held-out sessions per profile: "
      + ", ".join(f"{p} {res['profiles'][p]['held_out_sessions']}" for p in profiles))
print(f"{'strategy':9}" + "".join(f"{p:>22}" for p in profiles))
for s in order:
    cells = []
    for p in profiles:
        v = res["profiles"][p]
        sec, rat = v["seconds"].get(s), v["time_over_oracle"].get(s)
        cells.append(f"{f(sec, '8.2f')} s ({f(rat, '6.2f')}x)")
    print(f"{s:9}" + "".join(f"{c:>22}" for c in cells))
for p in profiles:
    b2 = res["profiles"][p]["b2"] or {}
    goal = b2.get("goal", {})
    missed = [k for k, ok in goal.items() if not ok]
    print(f"{p}: psa+exp/oracle {f(b2.get('psa+exp_over_oracle'), '.2f')}, "
          f"lazy/psa+exp {f(b2.get('lazy_over_psa+exp'), '.1f')}, "
          f"full/psa+exp {f(b2.get('full_over_psa+exp'), '.1f')}: "
          + ("goals met" if goal and not missed else "MISSED " + ", ".join(missed)))
with open(out, "w") as fh:
    json.dump(res, fh, indent=1)

# Grouped bars, log scale: per strategy one bar per profile.
colours = {"metro": "#2e86c1", "edge": "#c0392b", "constrained": "#7d3c98"}
names = [s for s in order if any(s in res["profiles"][p]["seconds"] for p in profiles)]
vals = [v for p in profiles for v in res["profiles"][p]["seconds"].values() if v]
lo = 10 ** math.floor(math.log10(min(vals)))
hi = 10 ** math.ceil(math.log10(max(vals)))
W, H, pad, left = 80 + 110 * len(names), 380, 50, 70
bw = 90 / max(1, len(profiles))


def y(v):
    return H - pad - (H - 2 * pad) * (math.log10(max(v, lo)) - math.log10(lo)) / (
        math.log10(hi) - math.log10(lo))


parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 30}" '
         f'font-family="sans-serif" font-size="12">',
         f'<text x="{left}" y="20" font-weight="bold">B2 {res["tree"]}: median session time '
         f'per strategy and WAN profile (seconds, log scale)</text>']
decade = lo
while decade <= hi:
    parts.append(f'<line x1="{left - 5}" y1="{y(decade):.1f}" x2="{W - 10}" y2="{y(decade):.1f}" '
                 f'stroke="#ddd"/><text x="{left - 8}" y="{y(decade) + 4:.1f}" '
                 f'text-anchor="end">{decade:g}</text>')
    decade *= 10
for i, s in enumerate(names):
    x0 = left + 10 + i * 110
    for j, p in enumerate(profiles):
        v = res["profiles"][p]["seconds"].get(s)
        if not v:
            continue
        x = x0 + j * bw
        parts.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bw - 2:.1f}" '
                     f'height="{H - pad - y(v):.1f}" fill="{colours.get(p, "#7f8c8d")}">'
                     f'<title>{s} {p}: {v:.2f} s</title></rect>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{y(v) - 3:.1f}" text-anchor="middle" '
                     f'font-size="9">{v:.3g}</text>')
    parts.append(f'<text x="{x0 + 45}" y="{H - pad + 16}" text-anchor="middle">{s}</text>')
parts.append(f'<line x1="{left - 5}" y1="{H - pad}" x2="{W - 10}" y2="{H - pad}" stroke="black"/>')
for j, p in enumerate(profiles):
    parts.append(f'<rect x="{left + j * 130}" y="{H + 4}" width="12" height="12" '
                 f'fill="{colours.get(p, "#7f8c8d")}"/><text x="{left + j * 130 + 16}" '
                 f'y="{H + 14}">{p}</text>')
parts.append("</svg>")
with open(svg, "w") as fh:
    fh.write("\n".join(parts) + "\n")
