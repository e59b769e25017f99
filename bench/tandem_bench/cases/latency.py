"""latency: native watch latency for small files, tandem against lsyncd."""
import os
import shutil
import statistics
import time

from ..procs import DirWatch, Lsyncd, Watcher, wait_until, write_and_time
from ..report import emit_table, target_text, version
from ..settings import LAT_FILES, LAT_SAMPLES, ROUNDS, TOOLS
from ..timing import ToolFailed
from ..trees import cleanup, copy_tree, tree, work
from ..util import log, ms, pct


def latency_samples(tag, src, dst, n, rng, start, stop):
    """n writes into SRC/lat-<tag>/ (fresh name each, write+close), each timed from just before
    the open until the complete file is in DEST. start() / stop() run the watcher."""
    sub, dsub = os.path.join(src, "lat-" + tag), os.path.join(dst, "lat-" + tag)
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, ".ready"), "w") as f:
        f.write("x")
    h = start()
    out = []
    try:
        if wait_until(lambda: os.path.exists(os.path.join(dsub, ".ready")), 120, step=0.01) is None:
            raise ToolFailed(f"{tag}: initial sync did not finish")
        time.sleep(0.3)
        dw = DirWatch(dsub)
        base = len(os.listdir(sub))
        for i in range(n):
            time.sleep(rng.uniform(0.03, 0.12))  # let the last change settle (debounce, rsync exit)
            name = f"f{base + i:05}.txt"
            data = (f"{tag} {i} {time.time()} ".encode() * 8)[: rng.randint(100, 4000)]
            out.append(write_and_time(sub, dsub, name, data, 10, dw))
        dw.close()
    finally:
        stop(h)
    return out


def case_latency():
    import random
    src = work("latency", "src")
    copy_tree(tree("--files", str(LAT_FILES)), src)
    configs = [("tandem --debounce 0", "d0", ("--debounce", "0"), 0.010),
               ("tandem --debounce 50ms", "d50", ("--debounce", "50ms"), 0.060)]
    if shutil.which("lsyncd") and (not TOOLS or any("lsyncd".startswith(t) for t in TOOLS)):
        configs.append(("lsyncd delay=0 (default.rsync)", "lsyncd", None, None))
    else:
        log("  skip lsyncd: not installed (apt-get install lsyncd)")
    if TOOLS:
        configs = [c for c in configs if any(c[0].startswith(t) for t in TOOLS)]
    samples = {c[0]: [] for c in configs}
    per = -(-LAT_SAMPLES // ROUNDS)
    rng = random.Random(3)
    for rnd in range(ROUNDS):
        for label, tag, args, _ in configs:
            dst = work("latency", "dst-" + tag)
            os.makedirs(dst, exist_ok=True)
            if args is None:
                start = lambda: Lsyncd(src, dst, work("latency", "lsyncd"))  # noqa: E731
            else:
                def start(args=args, dst=dst):
                    w = Watcher(src, dst, *args)
                    w.wait_cycle(0)
                    return w
            got = latency_samples(tag, src, dst, per, rng, start, lambda h: h.stop())
            samples[label] += got
            good = [x for x in got if x is not None]
            log(f"  round {rnd + 1} {label:<32} median {ms(statistics.median(good)) if good else '-'} ms, "
                f"max {ms(max(good)) if good else '-'} ms, {len(got) - len(good)} lost")
    rows = []
    for label, tag, args, tgt in configs:
        got = samples[label]
        good = [x for x in got if x is not None]
        med = statistics.median(good) if good else None
        rows.append([label, f"{len(good)}/{len(got)}", ms(med), ms(pct(good, 90)) if good else "-",
                     ms(pct(good, 99)) if good else "-", ms(min(good)) if good else "-",
                     ms(max(good)) if good else "-",
                     target_text(None if med is None else med * 1000, "<=", tgt * 1000, "ms", "median")
                     if tgt else ""])
    cleanup(work("latency"))
    emit_table("latency", f"native watch latency, small files (100..4000 B) into a {LAT_FILES}-file tree",
               ["watcher", "arrived", "median ms", "p90 ms", "p99 ms", "min ms", "max ms", "target"], rows,
               notes=["each sample: a new file written (open, write, close) in SOURCE; timed from just before "
                      "the open until DEST holds the file with the right content (checked on each inotify event "
                      "in the DEST dir and every 1 ms)",
                      f"{ROUNDS} rounds, watchers alternate; each round restarts the watcher on a pre-synced DEST",
                      f"lsyncd: {version(['lsyncd', '-version'])}; sync {{ default.rsync, delay = 0, "
                      "rsync = { archive = true } }"])
