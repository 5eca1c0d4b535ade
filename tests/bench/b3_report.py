#!/usr/bin/env python3
"""B3's figures from session_bench.sh's runs: one JSON line per (held-out
session, strategy) with its time and session counters. Prints the table,
checks the goal, writes JSON and an SVG bar chart."""
import json
import statistics
import sys

rows_path, first_fetched, new_json, profile, history, read_ahead, tree, out, svg = sys.argv[1:10]
runs = [json.loads(l) for l in open(rows_path) if l.strip()]
order = ["lazy", "full", "local", "replay", "psa", "psa+exp", "oracle"]
by = {}
for r in runs:
    by.setdefault(r["k"], {})[r["strategy"]] = r


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def wan(r):  # bytes that cross the WAN for this session: its layers and its fetches
    return r["layer_bytes"] + r["origin_bytes"]


def recall(r):
    d = r["from_delta"] + r["from_base"]
    return r["from_delta"] / d if d else None


def precision(r):
    return r["prefetched_read"] / r["prefetched_blocks"] if r["prefetched_blocks"] else None


res = {"profile": profile, "tree": tree, "history_sessions": int(history),
       "held_out_sessions": len(by), "loop_read_ahead_kb": read_ahead, "strategies": {}}
for s in order:
    rs = [(k, v[s], v.get("oracle")) for k, v in sorted(by.items()) if s in v]
    if not rs:
        continue
    res["strategies"][s] = {
        "seconds": med([r["seconds"] for _, r, _ in rs]),
        "time_over_oracle": med([r["seconds"] / o["seconds"] for _, r, o in rs if o and o["seconds"]]),
        "wan_bytes": med([wan(r) for _, r, _ in rs]),
        "wan_over_oracle": med([wan(r) / wan(o) for _, r, o in rs if o and wan(o)]),
        "no_wait_share": med([r["no_wait_share"] for _, r, _ in rs]),
        "recall": med([recall(r) for _, r, _ in rs]),
        "precision": med([precision(r) for _, r, _ in rs]),
        "wan_precision": med([r["wan_precision"] for _, r, _ in rs]),
        "expanded_blocks": med([r["expanded_blocks"] for _, r, _ in rs]),
        "expanded_read": med([r["expanded_read"] for _, r, _ in rs]),
        "waited_blocks": med([r["waited_blocks"] for _, r, _ in rs]),
        "blocks_read": med([r["blocks_read"] for _, r, _ in rs]),
    }
res["sessions"] = runs
new = json.loads(new_json)
res["new_snapshot"] = {"first_psa_fetched_blocks": int(first_fetched or 0),
                       "fetched_blocks": new["fetched_blocks"], "local_blocks": new["local_blocks"]}


def f(x, fmt):
    return format(x, fmt) if x is not None else "-"


print(f"B3 ({tree}, {profile}): medians over {len(by)} held-out sessions, "
      f"each predicted from the sessions before it")
print(f"{'strategy':9} {'time s':>7} {'t/oracle':>8} {'WAN MB':>8} {'WAN/oracle':>10} "
      f"{'no_wait':>7} {'recall':>6} {'precision':>9} {'wan_prec':>8}")
for s, v in res["strategies"].items():
    print(f"{s:9} {f(v['seconds'], '7.2f')} {f(v['time_over_oracle'], '8.2f')} "
          f"{f(v['wan_bytes'] / 1e6 if v['wan_bytes'] is not None else None, '8.1f')} "
          f"{f(v['wan_over_oracle'], '10.2f')} {f(v['no_wait_share'], '7.3f')} "
          f"{f(v['recall'], '6.2f')} {f(v['precision'], '9.2f')} {f(v['wan_precision'], '8.2f')}")
g = res["strategies"].get("psa+exp")
rp = res["strategies"].get("replay")
if g and rp:
    ok_wait = g["no_wait_share"] >= 0.95
    ok_wan = g["wan_over_oracle"] is not None and g["wan_over_oracle"] <= 1.5
    ahead = (g["no_wait_share"] > rp["no_wait_share"] and g["wan_over_oracle"] is not None and
             rp["wan_over_oracle"] is not None and g["wan_over_oracle"] <= rp["wan_over_oracle"])
    res["goal"] = {"no_wait_share_at_least_0.95": ok_wait, "wan_at_most_1.5x_oracle": ok_wan,
                   "ahead_of_replay_on_both": ahead}
    print(f"goal: no_wait_share >= 0.95: {'met' if ok_wait else 'MISSED'}; WAN <= 1.5x oracle: "
          f"{'met' if ok_wan else 'MISSED'}; ahead of replay on both: {'yes' if ahead else 'NO'}")
# B2: session time, each ratio taken per session (side by side on the same
# link) and then the median.


def time_ratio(a, b):
    return med([v[a]["seconds"] / v[b]["seconds"] for v in by.values()
                if a in v and b in v and v[b]["seconds"]])


if g:
    b2 = {"psa+exp_over_oracle": time_ratio("psa+exp", "oracle"),
          "psa_over_oracle": time_ratio("psa", "oracle"),
          "lazy_over_psa+exp": time_ratio("lazy", "psa+exp"),
          "full_over_psa+exp": time_ratio("full", "psa+exp"),
          "lazy_over_psa": time_ratio("lazy", "psa"),
          "full_over_psa": time_ratio("full", "psa"),
          "copy_seconds": med([v["full"].get("copy_seconds") for v in by.values() if "full" in v])}
    b2["goal"] = {
        "psa+exp_at_most_1.2x_oracle": b2["psa+exp_over_oracle"] is not None and
        b2["psa+exp_over_oracle"] <= 1.2,
        "lazy_at_least_5x_psa+exp": b2["lazy_over_psa+exp"] is not None and
        b2["lazy_over_psa+exp"] >= 5,
        "full_copy_at_least_3x_psa+exp": b2["full_over_psa+exp"] is not None and
        b2["full_over_psa+exp"] >= 3}
    res["b2"] = b2
    print(f"B2: psa+exp/oracle {f(b2['psa+exp_over_oracle'], '.2f')} (goal <= 1.2), "
          f"lazy/psa+exp {f(b2['lazy_over_psa+exp'], '.1f')} (>= 5), "
          f"full copy/psa+exp {f(b2['full_over_psa+exp'], '.1f')} (>= 3; the copy alone "
          f"{f(b2['copy_seconds'], '.1f')} s); psa alone: /oracle {f(b2['psa_over_oracle'], '.2f')}, "
          f"lazy/psa {f(b2['lazy_over_psa'], '.1f')}, full/psa {f(b2['full_over_psa'], '.1f')}")
    missed = [k for k, ok in b2["goal"].items() if not ok]
    print("B2 goals: " + ("all met" if not missed else "MISSED " + ", ".join(missed)))
ns = res["new_snapshot"]
print(f"new snapshot: its pre-assembly fetched {ns['fetched_blocks']} of "
      f"{ns['fetched_blocks'] + ns['local_blocks']} planned blocks over the link (the first "
      f"pre-assembly from history fetched {ns['first_psa_fetched_blocks']})")
if out:
    with open(out, "w") as fh:
        json.dump(res, fh, indent=1)
if svg:
    # Two panels of bars: session time over the oracle's, and no_wait_share.
    names = list(res["strategies"])
    W, H, pad, bw = 640, 300, 50, 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{2 * H}" '
             f'font-family="sans-serif" font-size="12">']
    for panel, (key, title, top) in enumerate(
            [("time_over_oracle", "session time / oracle's (lower is better)", None),
             ("no_wait_share", "no_wait_share (higher is better)", 1.0)]):
        y0 = panel * H
        vals = [res["strategies"][n][key] or 0 for n in names]
        vmax = top or max(vals + [1.0]) * 1.1
        parts.append(f'<text x="{pad}" y="{y0 + 20}" font-weight="bold">B3 {tree} {profile}: '
                     f'{title}</text>')
        for i, (n, v) in enumerate(zip(names, vals)):
            h = (H - 2 * pad) * v / vmax
            x = pad + i * (bw + 30)
            y = y0 + H - pad - h
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bw}" height="{h:.1f}" '
                         f'fill="{"#c0392b" if n == "psa+exp" else "#7f8c8d"}"/>')
            parts.append(f'<text x="{x + bw / 2}" y="{y - 4:.1f}" text-anchor="middle">{v:.2f}</text>')
            parts.append(f'<text x="{x + bw / 2}" y="{y0 + H - pad + 16}" '
                         f'text-anchor="middle">{n}</text>')
        parts.append(f'<line x1="{pad - 5}" y1="{y0 + H - pad}" x2="{W - 10}" y2="{y0 + H - pad}" '
                     f'stroke="black"/>')
    parts.append("</svg>")
    with open(svg, "w") as fh:
        fh.write("\n".join(parts) + "\n")
