#!/usr/bin/env python3
"""B4's plot: recall and precision of the plan against the number of prior
sessions (learning_curve's JSON), with the cold start marked. SVG."""
import json
import sys

src, out, title = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(src))
pts = d["curve"]
W, H, pad = 560, 320, 50
xmax = max(p["prior_sessions"] for p in pts) or 1


def x(n):
    return pad + (W - 2 * pad) * n / xmax


def y(v):
    return H - pad - (H - 2 * pad) * v


parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<text x="{pad}" y="20" font-weight="bold">B4 {title}: the learning curve</text>',
         f'<line x1="{pad}" y1="{y(0)}" x2="{W - pad}" y2="{y(0)}" stroke="black"/>',
         f'<line x1="{pad}" y1="{y(0)}" x2="{pad}" y2="{y(1)}" stroke="black"/>']
for v in (0, 0.5, 1):
    parts.append(f'<text x="{pad - 8}" y="{y(v) + 4}" text-anchor="end">{v}</text>')
for p in pts:
    parts.append(f'<text x="{x(p["prior_sessions"])}" y="{y(0) + 16}" '
                 f'text-anchor="middle">{p["prior_sessions"]}</text>')
parts.append(f'<text x="{W / 2}" y="{H - 10}" text-anchor="middle">prior sessions</text>')
for key, color in (("recall", "#c0392b"), ("precision", "#2c3e50")):
    line = " ".join(f'{x(p["prior_sessions"]):.1f},{y(p[key]):.1f}' for p in pts)
    parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
    for p in pts:
        parts.append(f'<circle cx="{x(p["prior_sessions"]):.1f}" cy="{y(p[key]):.1f}" r="3" '
                     f'fill="{color}"/>')
    cold = d["cold_start"][key]
    parts.append(f'<line x1="{pad}" y1="{y(cold):.1f}" x2="{W - pad}" y2="{y(cold):.1f}" '
                 f'stroke="{color}" stroke-dasharray="4 4"/>')
    parts.append(f'<text x="{W - pad + 4}" y="{y(cold) + 4:.1f}" fill="{color}">{key} '
                 f'(cold: {cold:.2f})</text>')
parts.append("</svg>")
open(out, "w").write("\n".join(parts) + "\n")
