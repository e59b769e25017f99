"""memory: resident memory per tracked entry while watching a large tree."""
import os
import subprocess
import sys
import time

from ..procs import Watcher, mem_available, proc_status_kib
from ..report import emit_table, target_text
from ..settings import MEM_CYCLES, MEM_FILES, MEM_MAX, MEM_MODES, MEM_POLL, TANDEM
from ..timing import ToolFailed, run_timed
from ..trees import cleanup, tree, tree_path, work
from ..util import fresh_dir, human, log


def watch_rss(src, dst, args, cycles):
    """(VmRSS after cycle 0, max VmRSS over `cycles` more cycles, VmHWM) in bytes."""
    w = Watcher(src, dst, *args)
    try:
        w.wait_cycle(0, timeout=3600)
        after0 = proc_status_kib(w.pid, "VmRSS")
        peak = after0
        for c in range(1, cycles + 1):
            while w.last_cycle_no() < c:
                peak = max(peak, proc_status_kib(w.pid, "VmRSS"))
                if w.p.poll() is not None:
                    raise ToolFailed("tandem exited: " + w.stderr_tail())
                time.sleep(0.05)
        end = proc_status_kib(w.pid, "VmRSS")
        hwm = proc_status_kib(w.pid, "VmHWM")
        strat = w.strategy().get("name", "?")
    finally:
        w.stop()
    return after0 * 1024, max(peak, end) * 1024, end * 1024, hwm * 1024, strat


def case_memory():
    args = ("--files", str(MEM_FILES), "--min", "0", "--max", MEM_MAX)
    path = tree_path(*args)
    if not os.path.isdir(path):
        # tmpfs: about 1.5 KiB of inode+dentry per file, plus a 4 KiB page per non-empty file;
        # SOURCE and DEST both, and tandem itself.
        need = MEM_FILES * 2 * 6 * 1024 + (2 << 30)
        if mem_available() < need:
            sys.exit(f"memory: needs about {human(need)} available, has {human(mem_available())}")
    src = tree(*args)
    if mem_available() < MEM_FILES * 6 * 1024 + (2 << 30):
        sys.exit(f"memory: not enough memory left for DEST ({human(mem_available())} available)")
    log("  counting entries")
    entries = int(subprocess.run(["find", src, "-mindepth", "1", "-printf", "."], stdout=subprocess.PIPE)
                  .stdout.__len__())
    empty_src, empty_dst = work("memory", "empty-src"), work("memory", "empty-dst")
    fresh_dir(empty_src)
    fresh_dir(empty_dst)
    dst = work("memory", "dst")
    os.makedirs(dst, exist_ok=True)
    rows = []
    notes = []
    for mode in MEM_MODES:
        margs = ("--poll", MEM_POLL) if mode == "poll" else ("--debounce", "200ms")
        if mode == "native":
            need = entries // 100  # directories, roughly; one inotify watch each
            if int(open("/proc/sys/fs/inotify/max_user_watches").read()) < need:
                notes.append(f"native skipped: fs.inotify.max_user_watches below {need}")
                continue
        ncyc = MEM_CYCLES if mode == "poll" else 0
        b0, bpeak, bend, bhwm, _ = watch_rss(empty_src, empty_dst, margs, ncyc)
        log(f"  {mode}: baseline (empty tree) VmRSS {b0 / 1048576:.1f} MiB")
        first = not os.listdir(dst)
        if first:
            log(f"  {mode}: DEST empty, the initial sync copies {entries} entries (untimed)")
            run_timed([TANDEM, src, dst])
        a0, apeak, aend, ahwm, strat = watch_rss(src, dst, margs, ncyc)
        if mode == "native":
            time.sleep(0)  # no cycles to wait for: nothing changes
        per0 = (a0 - b0) / entries
        perpeak = (apeak - bpeak) / entries
        perhwm = (ahwm - bhwm) / entries
        allin = a0 / entries
        log(f"  {mode}: VmRSS after sync {a0 / 1048576:.1f} MiB ({per0:.0f} B/entry), max {apeak / 1048576:.1f} "
            f"MiB, HWM {ahwm / 1048576:.1f} MiB, {allin:.0f} B/entry counting everything")
        rows.append([f"tandem --watch {' '.join(margs)} ({strat})", f"{b0 / 1048576:.1f}", f"{a0 / 1048576:.1f}",
                     f"{apeak / 1048576:.1f}", f"{ahwm / 1048576:.1f}", f"{per0:.0f}", f"{perpeak:.0f}",
                     f"{perhwm:.0f}", target_text(per0, "<=", 80, "B"), f"{allin:.0f}",
                     target_text(allin, "<=", 120, "B") if entries <= 150000 else "(at 100,000 entries)"])
    cleanup(work("memory"))
    emit_table("memory", f"resident memory per tracked entry, {entries} entries (files {MEM_FILES}, 0..{MEM_MAX} B)",
               ["watcher", "baseline RSS MiB (empty tree)", "RSS after cycle 0 MiB", f"max RSS over {MEM_CYCLES} "
                "poll cycles MiB", "VmHWM MiB", "B/entry after sync", "B/entry max", "B/entry HWM (peak)",
                "target (steady)", "B/entry counting everything (RSS / entries)",
                "target (100,000 entries: MEM_FILES=100000)"], rows,
               notes=notes + ["B/entry = (RSS - RSS of the same watcher on an empty tree) / entries in SOURCE "
                              "(files + dirs); DEST pre-synced, so cycle 0 is a no-op scan of both sides",
                              "VmHWM includes the initial sync, when SOURCE and DEST snapshots are both held",
                              "counting everything = RSS after cycle 0 / entries, no baseline subtracted "
                              "(issue 17: <= 120 B/entry at 100,000 entries)"])
