"""rename: a large file and a directory renamed in SOURCE while watching (native, poll)."""
import os
import statistics
import time

from ..procs import DirWatch, Watcher, wait_until
from ..report import emit_table, target_text
from ..settings import RENAME_DIR_FILES, RENAME_N, RENAME_SIZE, ROUNDS
from ..timing import ToolFailed
from ..trees import cleanup, tree, work
from ..util import fresh_dir, human, log, ms, sh, size_bytes


def case_rename():
    big_tree = tree("--files", "0", "--large", "1", "--large-size", RENAME_SIZE)
    dir_tree = tree("--files", str(RENAME_DIR_FILES))
    src = work("rename", "src")
    fresh_dir(src)
    sh("cp", "-a", os.path.join(big_tree, "large000.bin"), os.path.join(src, "big-0.bin"))
    sh("cp", "-a", dir_tree, os.path.join(src, "dir-0"))
    deep = None  # the last file in the directory, for "complete in DEST"
    for root, dirs, names in os.walk(os.path.join(src, "dir-0")):
        dirs.sort()
        if names:
            deep = os.path.relpath(os.path.join(root, max(names)), os.path.join(src, "dir-0"))
    modes = [("native, --debounce 0", ("--debounce", "0"), 0.100), ("poll 200ms", ("--poll", "200ms"), None)]
    res = {(m[0], k): [] for m in modes for k in ("file", "dir")}
    how = {(m[0], k): set() for m in modes for k in ("file", "dir")}
    state = {"file": 0, "dir": 0}
    for rnd in range(ROUNDS):
        for label, margs, _ in modes:
            dst = work("rename", "dst")
            os.makedirs(dst, exist_ok=True)
            w = Watcher(src, dst, *margs)
            try:
                w.wait_cycle(0, timeout=600)
                time.sleep(0.3)
                dw = DirWatch(dst)
                for i in range(RENAME_N):
                    for kind in ("file", "dir"):
                        old_n = state[kind]
                        new_n = old_n + 1
                        fmt = "big-{}.bin" if kind == "file" else "dir-{}"
                        old, new = fmt.format(old_n), fmt.format(new_n)
                        check = new if kind == "file" else os.path.join(new, deep)
                        before = w.last_cycle_no()
                        time.sleep(0.25)
                        t0 = time.perf_counter()
                        os.rename(os.path.join(src, old), os.path.join(src, new))
                        t1 = wait_until(lambda: os.path.exists(os.path.join(dst, check))
                                        and not os.path.lexists(os.path.join(dst, old)), 60, dw)
                        state[kind] = new_n
                        res[(label, kind)].append(None if t1 is None else t1 - t0)
                        # How tandem did it: a rename, or copies (read from the JSON events).
                        try:
                            w.wait_cycle(before + 1, timeout=30)
                            time.sleep(0.05)
                        except ToolFailed:
                            pass
                        with w.cond:
                            evs = [(t, ev) for t, ev in w.events if t >= t0]
                        seen = next((t - t0 for t, ev in evs if ev.get("event") in ("rename", "copy", "delete")), None)
                        evs = [ev for _, ev in evs]
                        cyc = [ev for ev in evs if ev.get("event") == "cycle" and ev["cycle"] > before]
                        copied = sum(c["copied"] for c in cyc)
                        renamed = sum(c["renamed"] for c in cyc)
                        how[(label, kind)].add(f"{renamed} renamed, {copied} copied")
                        log(f"  round {rnd + 1} {label:<20} {kind:<4} {ms(res[(label, kind)][-1])} ms "
                            f"({renamed} renamed, {copied} copied; tandem's first change event after "
                            f"{ms(seen)} ms)")
                dw.close()
            finally:
                w.stop()
    rows = []
    size = human(size_bytes(RENAME_SIZE))
    for label, _, tgt in modes:
        for kind in ("file", "dir"):
            got = res[(label, kind)]
            good = [x for x in got if x is not None]
            med = statistics.median(good) if good else None
            what = f"one {size} file" if kind == "file" else f"a directory of {RENAME_DIR_FILES} files"
            rows.append([label, what, f"{len(good)}/{len(got)}", ms(med), ms(max(good)) if good else "-",
                         "; ".join(sorted(how[(label, kind)])),
                         target_text(None if med is None else med * 1000, "<", tgt * 1000, "ms", "median")
                         if tgt and kind == "file" else "",
                         " ".join(ms(x) for x in got)])
    cleanup(work("rename"))
    emit_table("rename", "rename in SOURCE while watching: time until the new name is in DEST and the old gone",
               ["watcher", "renamed", "arrived", "median ms", "max ms", "tandem did (cycle events)", "target",
                "ms per sample"], rows,
               notes=["timed from just before rename(2) in SOURCE until DEST has the new name (for the directory: "
                      "its last file) and not the old one; checked on each inotify event in DEST and every 1 ms",
                      f"names alternate big-N.bin / dir-N, {RENAME_N} renames of each per round, {ROUNDS} rounds"])
