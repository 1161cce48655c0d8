#!/usr/bin/env python3
"""Makes a benchmark tree: N files totalling about TOTAL bytes, mixed sizes (many small, few
large, like a moodledata filedir), deterministic for a seed.
usage: gen_tree.py DIR --files N --total BYTES [--seed S]"""
import argparse, os, random
ap = argparse.ArgumentParser()
ap.add_argument("dir"); ap.add_argument("--files", type=int, required=True)
ap.add_argument("--total", type=int, required=True); ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
rnd = random.Random(a.seed)
weights = [rnd.paretovariate(0.9) for _ in range(a.files)]
scale = a.total / sum(weights)
block = rnd.randbytes(1 << 20)
for i, w in enumerate(weights):
    size = max(1, int(w * scale))
    d = os.path.join(a.dir, f"{i % 256:02x}", f"{(i // 256) % 256:02x}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:07d}"), "wb") as f:
        # Unique content per file without generating GBs of randomness: a seeded header + rotating block.
        f.write(i.to_bytes(8, "little") + rnd.randbytes(56))
        left = size - 64
        off = rnd.randrange(len(block))
        while left > 0:
            chunk = block[off:off + left] if off + left <= len(block) else block[off:]
            f.write(chunk); left -= len(chunk); off = 0
    old = 1_700_000_000
    os.utime(os.path.join(d, f"f{i:07d}"), (old, old))
