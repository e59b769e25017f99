"""pairs: many mirrors in one `tandem --config` service vs one mirror of the same total size
(issue 15): PAIRS_N mirrors of PAIRS_FILES files each against one mirror of
PAIRS_N x PAIRS_FILES files, both watching (native events, DEST watched, the defaults).

DESTs are synced first (a one-shot of the same config file, untimed), so the service's first
syncs are no-op scans. Once the status file says ready, the process is left alone for
PAIRS_SETTLE seconds, then its CPU time (utime+stime) is measured over PAIRS_IDLE seconds and its
VmRSS read at the end. Target: the many mirrors' idle CPU and RSS within 1.10 x the one
mirror's."""
import json
import os
import signal
import subprocess
import tempfile
import time

from ..procs import Watcher, proc_status_kib, wait_until
from ..report import emit_table, target_text
from ..settings import TANDEM, env
from ..timing import ToolFailed, run_timed
from ..trees import cleanup, copy_tree, tree, work
from ..util import log

PAIRS_N = int(env("PAIRS_N", "50"))
PAIRS_FILES = int(env("PAIRS_FILES", "2000"))
PAIRS_IDLE = float(env("PAIRS_IDLE", "60"))
PAIRS_SETTLE = float(env("PAIRS_SETTLE", "3"))


def proc_cpu(pid) -> float:
    """CPU seconds of all of a process's threads, to the nanosecond (the first field of each
    /proc/PID/task/TID/schedstat; /proc/PID/stat counts in 10 ms ticks, too coarse for an idle
    process)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def write_config(path, pairs, watch):
    with open(path, "w") as f:
        if watch:
            f.write("watch = true\n")
        for i, (src, dst) in enumerate(pairs):
            f.write(f'\n[[sync]]\nname = "p{i}"\nsource = "{src}"\ndest = "{dst}"\n')


def idle_service(conf, status):
    """(CPU seconds per second idle, VmRSS bytes, seconds until ready) of the service."""
    err = tempfile.TemporaryFile()
    if os.path.exists(status):
        os.unlink(status)  # a previous run's says ready
    t0 = time.perf_counter()
    p = subprocess.Popen([TANDEM, "--config", conf, "--status-file", status, "-q"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=err)
    try:
        def ready():
            if p.poll() is not None:
                err.seek(0)
                raise ToolFailed(f"tandem exited {p.returncode}: {err.read()[-600:].decode(errors='replace')}")
            try:
                with open(status) as f:
                    return json.load(f).get("ready") is True
            except (OSError, ValueError):
                return False
        if wait_until(ready, 1800, step=0.05) is None:
            raise ToolFailed("the service did not get ready")
        to_ready = time.perf_counter() - t0
        time.sleep(PAIRS_SETTLE)
        c0, w0 = proc_cpu(p.pid), time.perf_counter()
        time.sleep(PAIRS_IDLE)
        c1, w1 = proc_cpu(p.pid), time.perf_counter()
        rss = proc_status_kib(p.pid, "VmRSS") * 1024
        threads = proc_status_kib(p.pid, "Threads")
        return (c1 - c0) / (w1 - w0), rss, to_ready, threads
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def idle_watch(src, dst):
    """The same figures for one `tandem --watch SOURCE DEST` (no config file)."""
    t0 = time.perf_counter()
    w = Watcher(src, dst)
    try:
        w.wait_cycle(0, timeout=1800)
        to_ready = time.perf_counter() - t0
        time.sleep(PAIRS_SETTLE)
        c0, w0 = proc_cpu(w.pid), time.perf_counter()
        time.sleep(PAIRS_IDLE)
        c1, w1 = proc_cpu(w.pid), time.perf_counter()
        return ((c1 - c0) / (w1 - w0), proc_status_kib(w.pid, "VmRSS") * 1024, to_ready,
                proc_status_kib(w.pid, "Threads"))
    finally:
        w.stop()


def case_pairs():
    base = work("pairs")
    small = tree("--files", str(PAIRS_FILES))
    big = tree("--files", str(PAIRS_N * PAIRS_FILES))
    many = []
    for i in range(PAIRS_N):
        src = os.path.join(base, f"src{i}")
        if not os.path.isdir(src):
            copy_tree(small, src)
        many.append((src, os.path.join(base, f"dst{i}")))
    one = [(big, os.path.join(base, "dst-big"))]
    rows = []
    res = {}
    for label, pairs in ((f"1 mirror x {PAIRS_N * PAIRS_FILES:,} files", one),
                         (f"{PAIRS_N} mirrors x {PAIRS_FILES:,} files", many)):
        conf = os.path.join(base, "once.toml")
        write_config(conf, pairs, watch=False)
        log(f"  {label}: presync (one-shot of the same file, untimed)")
        s = run_timed([TANDEM, "--config", conf, "-q"])
        conf = os.path.join(base, "service.toml")
        write_config(conf, pairs, watch=True)
        cpu, rss, to_ready, threads = idle_service(conf, os.path.join(base, "status.json"))
        log(f"  {label}: ready in {to_ready:.2f}s, idle CPU {cpu * 100:.4f} %, RSS {rss / 1048576:.1f} MiB, "
            f"{threads} threads")
        res[label] = (cpu, rss)
        rows.append([label, f"{s.wall:.2f}", f"{to_ready:.2f}", f"{cpu * 100:.4f}", f"{rss / 1048576:.1f}",
                     str(threads)])
    cpu, rss, to_ready, threads = idle_watch(*one[0])
    log(f"  tandem --watch (alone): ready in {to_ready:.2f}s, idle CPU {cpu * 100:.4f} %, RSS {rss / 1048576:.1f} MiB")
    rows.insert(0, [f"tandem --watch, {PAIRS_N * PAIRS_FILES:,} files (no config)", "", f"{to_ready:.2f}",
                    f"{cpu * 100:.4f}", f"{rss / 1048576:.1f}", str(threads)])
    (c1, r1), (cn, rn) = res.values()
    rc, rr = cn / c1 if c1 else float("inf"), rn / r1
    rows.append(["ratio (50 mirrors / 1 mirror)", "", "", f"{rc:.2f} ({target_text(rc, '<=', 1.10)})",
                 f"{rr:.2f} ({target_text(rr, '<=', 1.10)})", ""])
    emit_table("pairs", f"{PAIRS_N} mirrors of {PAIRS_FILES:,} files in one `tandem --config` vs one mirror of "
               f"{PAIRS_N * PAIRS_FILES:,} files, idle after the first sync",
               ["service", "one-shot of all (s)", "ready after (s)", f"idle CPU over {PAIRS_IDLE:.0f} s (%)",
                "VmRSS (MiB)", "threads"], rows,
               notes=["idle CPU = (utime+stime) / wall over the idle window, after the status file said ready "
                      f"and {PAIRS_SETTLE:.0f} s more; native events, DEST watched (defaults)"])
    cleanup(base)
