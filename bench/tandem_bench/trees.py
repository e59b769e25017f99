"""Benchmark trees (made by mktree once and reused while the arguments match), the work dirs under
BENCH_DIR, and the check of DEST against SOURCE."""
import os
import shlex
import subprocess
import sys

from .settings import BENCH_DIR, KEEP_DST, MKTREE
from .util import log, rm_rf, sh


def tree_path(*args) -> str:
    return os.path.join(BENCH_DIR, "trees", "-".join(a.lstrip("-") for a in args).replace("/", "_"))


def tree(*args) -> str:
    """A mktree tree for these arguments, made once and reused while the arguments match."""
    path = tree_path(*args)
    ok = path + ".ok"
    want = shlex.join(args)
    if os.path.exists(ok) and open(ok).read() == want and os.path.isdir(path):
        log(f"  reuse tree {path}")
        return path
    if not MKTREE or not os.path.exists(MKTREE):
        sys.exit(f"bench.py: mktree not found (MKTREE={MKTREE!r}); run through bench/run.sh")
    rm_rf(ok)
    rm_rf(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log(f"  make tree {path} ({want})")
    sh(sys.executable, MKTREE, path, *args)
    os.sync()
    with open(ok, "w") as f:
        f.write(want)
    return path


def tree_size(path):
    files = total = 0
    for root, _, names in os.walk(path):
        for n in names:
            files += 1
            total += os.lstat(os.path.join(root, n)).st_size
    return files, total


def copy_tree(src, dst):
    rm_rf(dst)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    sh("cp", "-a", src, dst)


def work(*parts):
    return os.path.join(BENCH_DIR, "work", *parts)


def cleanup(*paths):
    if not KEEP_DST:
        for p in paths:
            rm_rf(p)


def snapshot(root, whole_seconds=False):
    """rel path -> comparable metadata (dir mtimes are left out: rclone does not keep them);
    mtimes cut to the second with whole_seconds (SFTP v3 carries no more)."""
    out = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel)) as it:
            for e in it:
                r = os.path.join(rel, e.name)
                st = e.stat(follow_symlinks=False)
                if e.is_symlink():
                    out[r] = ("link", os.readlink(e.path))
                elif e.is_dir(follow_symlinks=False):
                    out[r] = ("dir", st.st_mode & 0o7777)
                    stack.append(r)
                else:
                    mtime = st.st_mtime_ns // 10**9 if whole_seconds else st.st_mtime_ns
                    out[r] = ("file", st.st_size, mtime, st.st_mode & 0o7777)
    return out


def verify(src, dst, whole_seconds=False) -> str:
    """'ok' or a short description of how DEST differs from SOURCE (metadata + content)."""
    a, b = snapshot(src, whole_seconds), snapshot(dst, whole_seconds)
    missing = [k for k in a if k not in b]
    extra = [k for k in b if k not in a]
    differ = [k for k in a if k in b and a[k] != b[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} extra (e.g. {extra[0]})")
    if differ:
        k = differ[0]
        problems.append(f"{len(differ)} metadata diffs (e.g. {k}: {a[k]} vs {b[k]})")
    if not problems:
        r = subprocess.run(["diff", "-rq", "--no-dereference", src, dst], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            lines = r.stdout.splitlines()
            problems.append(f"{len(lines)} content diffs (e.g. {lines[0] if lines else '?'})")
    return "ok" if not problems else "; ".join(problems)
