"""poll: CPU of one idle `--poll 1s` cycle against find and rsync; poll latency."""
import os
import statistics
import time

from ..procs import DirWatch, Watcher, proc_cpu, wait_until, write_and_time
from ..report import emit_table, target_text
from ..settings import FILES, POLL_CYCLES, POLL_WRITES, ROUNDS, TANDEM, WALKERS_BIN
from ..timing import ToolFailed, run_timed
from ..trees import cleanup, tree, tree_size, work
from ..util import fresh_dir, human, log, ms, rm_rf
from .walkers import build_walkers


def case_poll():
    src = tree("--files", str(FILES))
    files, total = tree_size(src)
    dst_t, dst_r = work("poll", "dst-tandem"), work("poll", "dst-rsync")
    fresh_dir(dst_t)
    fresh_dir(dst_r)
    log("  initial mirrors (untimed)")
    run_timed([TANDEM, src, dst_t])
    run_timed(["rsync", "-a", "--delete", src + "/", dst_r + "/"])
    build_walkers()
    k = POLL_CYCLES
    t_cpu, t_wall, f_cpu, f_wall, r_cpu, r_wall, w_cpu, w_wall = [], [], [], [], [], [], [], []
    for rnd in range(ROUNDS):
        # tandem: CPU between the end of cycle 0 (the initial sync) and the end of cycle k.
        w = Watcher(src, dst_t, "--poll", "1s")
        try:
            w.wait_cycle(0)
            c0 = proc_cpu(w.pid)
            w.wait_cycle(k, timeout=60 + 30 * k)
            c1 = proc_cpu(w.pid)
            walls = [c["elapsed_ms"] / 1000 for c in w.cycles() if 1 <= c["cycle"] <= k]
            busy = [c for c in w.cycles() if 1 <= c["cycle"] <= k and c["copied"] + c["deleted"] + c["meta"]]
        finally:
            w.stop()
        t_cpu.append((c1 - c0) / k)
        t_wall.append(statistics.median(walls))
        log(f"  round {rnd + 1} tandem --poll 1s   {t_cpu[-1]:.3f} s cpu/cycle, scan {t_wall[-1]:.3f} s"
            + (f" ({len(busy)} cycles changed something!)" if busy else ""))
        os.sync()
        s = run_timed(["find", src, "-printf", "%s %T@ %m\n"])
        f_cpu.append(s.cpu)
        f_wall.append(s.wall)
        log(f"  round {rnd + 1} find -printf       {s.cpu:.3f} s cpu, {s.wall:.3f} s wall")
        s = run_timed([WALKERS_BIN, "floor", src])
        w_cpu.append(s.cpu)
        w_wall.append(s.wall)
        log(f"  round {rnd + 1} floor walk         {s.cpu:.3f} s cpu, {s.wall:.3f} s wall")
        os.sync()
        s = run_timed(["rsync", "-a", "--delete", src + "/", dst_r + "/"])
        r_cpu.append(s.cpu)
        r_wall.append(s.wall)
        log(f"  round {rnd + 1} rsync -a --delete  {s.cpu:.3f} s cpu, {s.wall:.3f} s wall")

    # Poll latency: a write in SOURCE until the complete file is in DEST, at --poll 1s.
    lat = []
    ok = src + ".ok"
    marker = open(ok).read()
    os.remove(ok)  # the cached tree is changed below; restored in `finally`
    sub = os.path.join(src, "bench-poll")
    rng = __import__("random").Random(7)
    try:
        fresh_dir(sub)
        w = Watcher(src, dst_t, "--poll", "1s")
        try:
            w.wait_cycle(0)
            dsub = os.path.join(dst_t, "bench-poll")
            if wait_until(lambda: os.path.isdir(dsub), 10) is None:
                raise ToolFailed("bench-poll never reached DEST")
            dw = DirWatch(dsub)
            for i in range(POLL_WRITES):
                time.sleep(rng.uniform(0.1, 1.1))  # a random phase against the poll timer
                data = f"poll sample {i} {time.time()}\n".encode() * 20
                name = f"w{i:03}.txt"
                lat.append(write_and_time(sub, dsub, name, data, 30, dw))
            dw.close()
        finally:
            w.stop()
    finally:
        rm_rf(sub)
        with open(ok, "w") as f:
            f.write(marker)
    cleanup(work("poll"))
    good = [x for x in lat if x is not None]
    tc, fc, rc = statistics.median(t_cpu), statistics.median(f_cpu), statistics.median(r_cpu)
    ratio = tc / fc if fc else None
    scan = statistics.median(t_wall)
    rows = [
        ["tandem --poll 1s, one idle cycle", f"{tc:.3f}", f"{scan:.3f}", f"{ratio:.2f}" if ratio else "-",
         target_text(ratio, "<=", 0.6), " ".join(f"{x:.3f}" for x in t_cpu)],
        ["find SRC -printf '%s %T@ %m\\n'", f"{fc:.3f}", f"{statistics.median(f_wall):.3f}", "1.00", "",
         " ".join(f"{x:.3f}" for x in f_cpu)],
        ["floor: one thread, getdents64 + one fstatat per entry, nothing else (bench/walkers floor)",
         f"{statistics.median(w_cpu):.3f}", f"{statistics.median(w_wall):.3f}",
         f"{statistics.median(w_cpu) / fc:.2f}" if fc else "-", "", " ".join(f"{x:.3f}" for x in w_cpu)],
        ["rsync -a --delete SRC/ DST/ (re-run)", f"{rc:.3f}", f"{statistics.median(r_wall):.3f}",
         f"{rc / fc:.2f}" if fc else "-", "", " ".join(f"{x:.3f}" for x in r_cpu)],
    ]
    lat_line = (f"Poll latency at --poll 1s (write in SOURCE -> complete file in DEST), {len(good)}/{len(lat)} "
                f"arrived: median {ms(statistics.median(good)) if good else '-'} ms, max "
                f"{ms(max(good)) if good else '-'} ms; expected <= interval + one scan = "
                f"{(1 + scan) * 1000:.0f} ms ({'met' if good and max(good) <= 1.05 + scan else 'MISSED'}). "
                f"Samples ms: {' '.join(ms(x) for x in lat)}")
    emit_table("poll", f"CPU per poll cycle on an unchanged tree, {files} files, {human(total)}",
               ["what", "median CPU s", "median wall s", "CPU ratio vs find", "target", "CPU s per round"],
               rows, notes=[
                   f"tandem: CPU (utime+stime from /proc/<pid>/stat) from the end of cycle 0 to the end of "
                   f"cycle {k}, divided by {k}; wall = median elapsed_ms of those cycles",
                   "find / rsync: user+sys of the process and its children (wait4 rusage); "
                   "rsync's DEST pre-synced",
                   "floor: the kernel work any scan that stats every entry pays (a C-like walk in Rust, "
                   "no allocation per entry); a target below floor / find is out of reach of such a scan",
               ], extra=lat_line)
