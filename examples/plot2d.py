#!/usr/bin/env python3
"""plot2d.py — side-by-side 2-D histograms of CSV point sets as one PNG.

    python3 examples/plot2d.py out.png data.csv samples.csv [...]

Each CSV has a header line and two numeric columns. Every panel uses the
same axes (the data's 0.5%..99.5% range, padded) and shows log counts in
grey (white = empty); panels are separated by a black bar. Standard
library only (zlib), so it runs wherever vlm builds."""
import math, struct, sys, zlib

def read(path):
    pts = []
    with open(path) as f:
        next(f)
        for line in f:
            a = line.strip().split(",")
            if len(a) >= 2:
                pts.append((float(a[0]), float(a[1])))
    return pts

def write_png(path, w, h, rows):
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    def chunk(t, d):
        c = t + d
        return struct.pack(">I", len(d)) + c + struct.pack(">I", zlib.crc32(c))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sets = [read(p) for p in sys.argv[2:]]
    n = 160
    ref = sets[0]
    lo, hi = [], []
    for k in range(2):
        v = sorted(p[k] for p in ref)
        a, b = v[int(0.005 * len(v))], v[int(0.995 * len(v)) - 1]
        pad = 0.1 * (b - a)
        lo.append(a - pad)
        hi.append(b + pad)
    panels = []
    for pts in sets:
        g = [[0] * n for _ in range(n)]
        for x, y in pts:
            i = int((x - lo[0]) / (hi[0] - lo[0]) * n)
            j = int((hi[1] - y) / (hi[1] - lo[1]) * n)
            if 0 <= i < n and 0 <= j < n:
                g[j][i] += 1
        top = max(max(r) for r in g) or 1
        panels.append([[255 - int(255 * math.log1p(c) / math.log1p(top)) for c in r] for r in g])
    rows = []
    for j in range(n):
        row = []
        for k, p in enumerate(panels):
            if k:
                row += [0] * 4
            row += p[j]
        rows.append(row)
    write_png(sys.argv[1], len(rows[0]), n, rows)
    print("wrote %s (%d panels, x in [%.2f, %.2f], y in [%.2f, %.2f])"
          % (sys.argv[1], len(panels), lo[0], hi[0], lo[1], hi[1]))

main()
