"""service: what watch mode's DEST repair costs (issue 12).

- first sync of FILES files and a burst of SERVICE_BURST rewritten files, with DEST watched
  (the default) and with --no-watch-dest: wall time until the cycle event arrives;
- a full verification (SIGHUP, --verify-every 0) of the unchanged tree against a one-shot
  no-op run of the same trees;
- SERVICE_TAMPER files rewritten in DEST by someone else: time until DEST has SOURCE's
  content again (DEST watched)."""
import os
import signal
import statistics
import time

from ..procs import Watcher, has_content, wait_until
from ..report import emit_table, target_text
from ..settings import FILES, ROUNDS, SERVICE_BURST, SERVICE_TAMPER, TANDEM, TANDEM_ARGS
from ..timing import ToolFailed, run_timed
from ..trees import cleanup, copy_tree, tree, work
from ..util import log, ms, rm_rf


def files_of(root, n):
    """The first n regular files below root, sorted (relative paths)."""
    out = []
    for d, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            out.append(os.path.relpath(os.path.join(d, name), root))
            if len(out) >= n:
                return out
    return out


def copied_since(w, mark):
    return sum(c.get("copied", 0) for c in w.cycles()[mark:])


def first_and_burst(src, dst, args, burst, rnd):
    """Seconds to the first sync's cycle event, and from the burst's first write until its
    copies are reported."""
    rm_rf(dst)
    t0 = time.perf_counter()
    w = Watcher(src, dst, "--debounce", "0", *args)
    try:
        w.wait_cycle(0)
        first = time.perf_counter() - t0
        time.sleep(0.5)
        mark = len(w.cycles())
        t1 = time.perf_counter()
        for rel in burst:
            with open(os.path.join(src, rel), "ab") as f:
                f.write(b"burst %d\n" % rnd)
        if wait_until(lambda: copied_since(w, mark) >= len(burst), 120, step=0.005) is None:
            raise ToolFailed(f"burst not synced: {copied_since(w, mark)} of {len(burst)}")
        return first, time.perf_counter() - t1
    finally:
        w.stop()


def case_service():
    src = work("service", "src")
    copy_tree(tree("--files", str(FILES)), src)
    dst = work("service", "dst")
    burst = files_of(src, SERVICE_BURST)
    modes = [("DEST watched", ()), ("--no-watch-dest", ("--no-watch-dest",))]
    res = {label: ([], []) for label, _ in modes}
    for rnd in range(ROUNDS):
        for label, args in modes:
            first, b = first_and_burst(src, dst, args, burst, rnd)
            res[label][0].append(first)
            res[label][1].append(b)
            log(f"  {label}: first sync {first:.3f}s, burst {b:.3f}s")
    med = {label: (statistics.median(f), statistics.median(b)) for label, (f, b) in res.items()}
    r_first = med["DEST watched"][0] / med["--no-watch-dest"][0]
    r_burst = med["DEST watched"][1] / med["--no-watch-dest"][1]
    rows = [[label, f"{f:.3f}", f"{b:.3f}"] for label, (f, b) in med.items()]
    rows.append(["ratio", f"{r_first:.2f} ({target_text(r_first, '<=', 1.10)})",
                 f"{r_burst:.2f} ({target_text(r_burst, '<=', 1.10)})"])
    emit_table("service", f"DEST watching: first sync of {FILES:,} files, burst of {len(burst):,} rewrites "
               f"(medians of {ROUNDS}, seconds)", ["mode", "first sync", "burst"], rows)

    # A verification of the unchanged (synced) tree against a one-shot no-op run.
    noop = [run_timed([TANDEM, *TANDEM_ARGS, src, dst]).wall for _ in range(ROUNDS)]
    w = Watcher(src, dst, "--no-watch-dest", "--verify-every", "0")
    verify = []
    try:
        w.wait_cycle(0)
        for _ in range(ROUNDS):
            n = w.last_cycle_no()
            w.p.send_signal(signal.SIGHUP)
            ev = w.wait_cycle(n + 1, timeout=120)
            if not ev.get("verify"):
                raise ToolFailed(f"cycle {ev.get('cycle')} after SIGHUP is no verification")
            verify.append(ev["elapsed_ms"] / 1000)
    finally:
        w.stop()
    v, n = statistics.median(verify), statistics.median(noop)
    emit_table("service", f"a full verification of {FILES:,} unchanged files vs a one-shot no-op run "
               f"(medians of {ROUNDS}, seconds)", ["verify (cycle elapsed)", "one-shot no-op (wall)", "ratio"],
               [[f"{v:.3f}", f"{n:.3f}", f"{v / n:.2f} ({target_text(v / n, '<=', 1.10)})"]])

    # Tampered files repaired under DEST watching.
    w = Watcher(src, dst, "--debounce", "0")
    lat = []
    try:
        w.wait_cycle(0)
        time.sleep(0.5)
        for rel in files_of(src, SERVICE_TAMPER):
            with open(os.path.join(src, rel), "rb") as f:
                want = f.read()
            time.sleep(0.1)
            t0 = time.perf_counter()
            with open(os.path.join(dst, rel), "wb") as f:
                f.write(b"TAMPERED " + want)
            t1 = wait_until(lambda: has_content(os.path.join(dst, rel), want), 30, step=0.001)
            lat.append(None if t1 is None else t1 - t0)
    finally:
        w.stop()
    done = [x for x in lat if x is not None]
    med_lat = statistics.median(done) if done else None
    emit_table("service", f"{len(lat)} files rewritten in DEST by someone else, until repaired (ms)",
               ["median", "max", "repaired", "target"],
               [[ms(med_lat), ms(max(done) if done else None), f"{len(done)}/{len(lat)}",
                 target_text(med_lat, "<=", 1.0, "s", "median")]])
    cleanup(dst)
