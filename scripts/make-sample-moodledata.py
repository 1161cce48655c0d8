#!/usr/bin/env python3
"""Generates a realistic sample moodledata tree for demos and benchmarks.

filedir/<h[0:2]>/<h[2:4]>/<sha1>: content-addressed course files (PDF-, image- and text-like
bytes of mixed sizes), filedir/warning.txt, and Moodle's local-only areas (temp/, cache/,
sessions/, trashdir/, lock/) that distd must never publish. Deterministic for a given seed.

usage: make-sample-moodledata.py DIR [--files N] [--seed S] [--max-kib K]
"""
import argparse, hashlib, os, random

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-kib", type=int, default=2048)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    filedir = os.path.join(a.dir, "filedir")
    os.makedirs(filedir, exist_ok=True)
    with open(os.path.join(filedir, "warning.txt"), "w") as f:
        f.write("This directory contains the content of uploaded files and is controlled by Moodle code. "
                "Do not manually move, change or rename any of the files and subdirectories here.\n")
    os.utime(os.path.join(filedir, "warning.txt"), (1_700_000_000, 1_700_000_000))
    total = 0
    for i in range(a.files):
        kind = rnd.choice(["pdf", "png", "txt", "txt", "pdf"])
        size = int(rnd.paretovariate(1.2) * 4096) % (a.max_kib * 1024) + 100
        if kind == "txt":
            words = ["course", "lecture", "week", "exercise", "moodle", "answer", "module", "reading"]
            body = (" ".join(rnd.choice(words) for _ in range(size // 6))).encode()[:size]
        else:
            head = b"%PDF-1.5\n" if kind == "pdf" else b"\x89PNG\r\n\x1a\n"
            body = head + rnd.randbytes(size - len(head))
        h = hashlib.sha1(body).hexdigest()
        d = os.path.join(filedir, h[0:2], h[2:4])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, h), "wb") as f:
            f.write(body)
        old = 1_790_000_000 - rnd.randint(1, 400) * 86400  # uploaded weeks ago
        os.utime(os.path.join(d, h), (old, old))
        total += len(body)
    for local in ["temp/backup/123", "cache/cachestore_file/x", "sessions/sess_abc", "trashdir/aa/bb/aabb",
                  "lock/lock_1"]:
        p = os.path.join(a.dir, local)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(b"local only\n")
    print(f"{a.files} course files, {total} bytes, in {filedir}")

if __name__ == "__main__":
    main()
