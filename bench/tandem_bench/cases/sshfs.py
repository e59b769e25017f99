"""sshfs: no-op run with SOURCE on an sshfs mount (bench/netfs.sh); one idle poll cycle there."""
import statistics

from ..procs import SshfsMount, Watcher, proc_cpu
from ..report import Report
from ..settings import SSHFS_FILES, TANDEM, TANDEM_ARGS
from ..timing import round_robin
from ..tools import Tool, available, rsync, tandem
from ..trees import cleanup, tree, tree_size, verify, work
from ..util import human, log
from .batch import prepared_dsts


def case_sshfs():
    export = tree("--files", str(SSHFS_FILES))
    mnt = work("sshfs", "mnt")
    with SshfsMount(export, mnt):
        plain = tandem()
        threaded = [Tool(f"tandem --scan-threads {n}", lambda s, d, n=n: [TANDEM, *TANDEM_ARGS, "--scan-threads",
                                                                             str(n), s, d], TANDEM)
                    for n in (4, 8, 16, 32)]
        tools = available([plain, rsync(delete=True), *threaded])
        log("  initial mirrors over sshfs (untimed)")
        dsts = prepared_dsts("sshfs", mnt, [t for t in tools if not t.label.startswith("tandem --")])
        for t in tools:  # the --scan-threads variants share tandem's DEST
            dsts.setdefault(t.label, dsts.get("tandem"))
        results = round_robin(tools, lambda t, rnd: (mnt, dsts[t.label]), check=lambda t, s, d: verify(s, d))
        # One idle poll cycle: tandem --watch on a FUSE mount picks polling by itself.
        notes = []
        if "tandem" in dsts:
            w = Watcher(mnt, dsts["tandem"], "--poll", "2s")
            try:
                w.wait_cycle(0, timeout=600)
                c0 = proc_cpu(w.pid)
                w.wait_cycle(3, timeout=600)
                c1 = proc_cpu(w.pid)
                walls = [c["elapsed_ms"] for c in w.cycles() if 1 <= c["cycle"] <= 3]
            finally:
                w.stop()
            w2 = Watcher(mnt, dsts["tandem"])
            try:
                w2.wait_cycle(0, timeout=600)
                strat = w2.strategy()
            finally:
                w2.stop()
            line = (f"idle poll cycle over sshfs (`tandem --watch --poll 2s`, cycles 1-3): elapsed_ms "
                    f"{' '.join(map(str, walls))} (median {statistics.median(walls):.0f} ms), CPU "
                    f"{(c1 - c0) / 3:.3f} s per cycle; plain --watch chose: {strat.get('name')} "
                    f"({strat.get('reason')})")
            log("  " + line)
            notes.append(line)
    cleanup(work("sshfs"))
    files, total = tree_size(export)
    return Report("sshfs", f"no-op re-run, SOURCE on sshfs (no caching, 127.0.0.1), {files} files, {human(total)}",
                  results, "rsync -a --delete", ("<=", 0.3),
                  notes=notes + ["DEST on tmpfs, pre-synced by each tool from the mount; tandem's default "
                                 "--scan-threads on FUSE is 16"])
