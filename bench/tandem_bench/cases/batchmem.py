"""batchmem: peak resident memory of one-shot runs over a large tree of tiny files, tandem
against `rsync -a --delete` (incremental recursion, a directory at a time)."""
import os
import sys

from ..procs import mem_available
from ..report import emit_table, target_text
from ..settings import BATCHMEM_FILES, BATCHMEM_MAX, TANDEM, TANDEM_ARGS, VERIFY
from ..timing import ToolFailed, run_timed
from ..trees import cleanup, tree, tree_path, verify, work
from ..util import fresh_dir, human, log

# Peak RSS target for a streaming one-shot run at 1,000,000 entries (issue 17).
TARGET_MIB = 64


def case_batchmem():
    args = ("--files", str(BATCHMEM_FILES), "--min", "0", "--max", BATCHMEM_MAX)
    if not os.path.isdir(tree_path(*args)):
        # tmpfs: about 1.5 KiB of inode+dentry per file plus a 4 KiB page per non-empty one,
        # for SOURCE and one DEST at a time.
        need = BATCHMEM_FILES * 2 * 6 * 1024 + (1 << 30)
        if mem_available() < need:
            sys.exit(f"batchmem: needs about {human(need)} available, has {human(mem_available())}")
    src = tree(*args)
    entries = sum(len(d) + len(f) for _, d, f in os.walk(src))
    rows = []
    tools = [
        ("tandem", lambda s, d: [TANDEM, *TANDEM_ARGS, s, d]),
        ("rsync -a --delete", lambda s, d: ["rsync", "-a", "--delete", s + "/", d + "/"]),
    ]
    peaks = {}
    for label, argv in tools:
        dst = work("batchmem", "dst")
        fresh_dir(dst)
        try:
            log(f"  {label}: first mirror")
            first = run_timed(argv(src, dst))
            if VERIFY:
                problem = verify(src, dst)
                if problem != "ok":
                    log(f"  {label}: DEST differs after the first mirror: {problem}")
            log(f"  {label}: no-op re-run")
            noop = run_timed(argv(src, dst))
        except ToolFailed as e:
            log(f"  {label}: {e}")
            rows.append([label, "failed", "", "", ""])
            continue
        finally:
            cleanup(work("batchmem"))
        peaks[label] = (first.rss_kib, noop.rss_kib)
        rows.append([label, f"{first.rss_kib / 1024:.1f}", f"{first.wall:.2f}", f"{noop.rss_kib / 1024:.1f}",
                     f"{noop.wall:.2f}"])
    notes = [f"tree: mktree {' '.join(args)} ({entries} entries); peak RSS from GNU time's %M",
             "rsync's figure is its largest process (sender, receiver and generator are separate)"]
    t = peaks.get("tandem")
    extra = ""
    if t:
        extra = (f"tandem peak {max(t) / 1024:.1f} MiB: "
                 + target_text(max(t) / 1024, "<=", TARGET_MIB, "MiB", "peak RSS"))
    emit_table("batchmem", f"peak resident memory of one-shot runs, {entries} entries",
               ["tool", "first mirror peak RSS MiB", "first mirror s", "no-op peak RSS MiB", "no-op s"],
               rows, notes, extra)
    return None
