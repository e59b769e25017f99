"""walkers: the directory walkers of bench/walkers on tmpfs and on sshfs."""
import os
import statistics
import subprocess

from ..procs import SshfsMount
from ..report import Report, emit
from ..settings import (FILES, SKIP_BUILD, SSHFS_FILES, WALK_NET_THREADS, WALK_SSHFS, WALK_THREADS,
                        WALKERS_BIN, WALKERS_DIR)
from ..timing import round_robin
from ..tools import Tool, available
from ..trees import cleanup, tree, tree_size, work
from ..util import log, sh


def walker_tool(name, threads):
    return Tool(f"{name}" + (" (tandem-like)" if name == "rayon" else ""),
                lambda s, d: [WALKERS_BIN, "--threads", str(threads), name, s], WALKERS_BIN)


def walker_check(tool, src, _dst):
    out = subprocess.run(tool.argv(src, ""), stdout=subprocess.PIPE, text=True).stdout.split()
    got = dict(kv.split("=", 1) for kv in out[1:] if "=" in kv)
    want = int(subprocess.run(["find", src, "-mindepth", "1", "-printf", "."], stdout=subprocess.PIPE).stdout
               .__len__())
    if got.get("errors", "0") != "0":
        return f"{got.get('errors')} errors"
    return "ok" if int(got.get("entries", -1)) == want else f"{got.get('entries')} entries, find: {want}"


def fastest(results):
    med = {r.tool.label: statistics.median(s.wall for s in r.samples) for r in results if r.samples}
    best = min(med, key=med.get) if med else "-"
    log(f"  fastest: {best}")
    return f"fastest (median wall): {best}"


def build_walkers():
    """Builds bench/walkers (unless SKIP_BUILD and it is built)."""
    if not SKIP_BUILD or not os.access(WALKERS_BIN, os.X_OK):
        log("  cargo build --release (bench/walkers)")
        sh("cargo", "build", "--release", "--quiet", "--manifest-path", os.path.join(WALKERS_DIR, "Cargo.toml"))


def case_walkers():
    build_walkers()
    names = subprocess.run([WALKERS_BIN, "--list"], stdout=subprocess.PIPE, text=True).stdout.split()
    notes = [f"walkers built: {' '.join(names)}" + ("" if "dua" in names else " (dua-core did not build: skipped)"),
             "each walk lstat()s every entry (hidden included), follows no symlink, counts entries and bytes; "
             "wall and CPU are of the whole process",
             "rayon (tandem-like): one rayon task per directory, std read_dir + DirEntry::metadata (fstatat on the "
             "open dir fd), like src/snapshot.rs; jwalk: lstat by path in process_read_dir on its pool; ignore: "
             "WalkParallel, filters off, DirEntry::metadata; dua: dua-core::walk, Order::Completion"]
    local_threads = WALK_THREADS
    src = tree("--files", str(FILES))
    tools = available([walker_tool(n, local_threads) for n in names])
    results = round_robin(tools, lambda t, rnd: (src, ""), check=walker_check)
    files, total = tree_size(src)
    emit(Report("walkers", f"walkers on tmpfs, {files} files, {local_threads} threads", results,
                tools[0].label, None, notes=notes + [fastest(results)]))
    if WALK_SSHFS:
        net_threads = WALK_NET_THREADS
        export = tree("--files", str(SSHFS_FILES))
        mnt = work("walkers", "mnt")
        with SshfsMount(export, mnt):
            tools = available([walker_tool(n, net_threads) for n in names])
            results = round_robin(tools, lambda t, rnd: (mnt, ""), check=walker_check)
        cleanup(work("walkers"))
        files, total = tree_size(export)
        emit(Report("walkers-sshfs", f"walkers on sshfs (no caching), {files} files, {net_threads} threads",
                    results, tools[0].label, None, notes=notes + [fastest(results)]))
    return None
