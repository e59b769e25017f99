"""Logging, sizes and small file-system helpers."""
import os
import subprocess
import sys


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def size_bytes(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    u = text[-1].upper()
    return int(text[:-1]) * units[u] if u in units else int(text)


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def sh(*argv):
    subprocess.run(argv, check=True)


def rm_rf(path):
    if os.path.lexists(path):
        sh("rm", "-rf", "--", path)


def fresh_dir(path):
    rm_rf(path)
    os.makedirs(path)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100)."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))]


def ms(x):
    return "-" if x is None else f"{x * 1000:.1f}"
