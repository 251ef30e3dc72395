#!/usr/bin/env python3
"""params_png.py — draw the rows of one parameter as a row of images.

    ./mog params --load mog.ckpt | python3 examples/params_png.py mu 28x28 means.png

Reads `./model params` CSV lines (name,row,value,...) from stdin, keeps
the rows of NAME, and writes them side by side as grey images of HxW
(values clipped to [0, 1]), 2 pixels apart, scaled up 2x. Standard
library only."""
import struct, sys, zlib

def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    name, shape, out = sys.argv[1], sys.argv[2], sys.argv[3]
    h, w = (int(v) for v in shape.split("x"))
    rows = [[float(v) for v in line.split(",")[2:]]
            for line in sys.stdin if line.split(",")[0] == name]
    if not rows or any(len(r) != h * w for r in rows):
        sys.exit("params_png: no rows of %s with %d values" % (name, h * w))
    s, gap = 2, 2
    W = len(rows) * (w * s + gap) - gap
    img = []
    for y in range(h * s):
        line = []
        for k, r in enumerate(rows):
            if k:
                line += [128] * gap
            for x in range(w * s):
                v = r[(y // s) * w + x // s]
                line.append(int(255 * min(1.0, max(0.0, v)) + 0.5))
        img.append(line)
    raw = b"".join(b"\x00" + bytes(l) for l in img)
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(out, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, h * s, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    print("wrote %s (%d images of %dx%d)" % (out, len(rows), h, w))

main()
