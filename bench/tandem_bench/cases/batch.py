"""Batch cases: first mirror (small files, large files), no-op re-run, one change, excluded dir."""
import os
import shutil
import subprocess
import sys

from ..report import Report
from ..settings import FILES, LARGE_COUNT, LARGE_SIZE, BENCH_DIR, MKTREE, TANDEM, TANDEM_ARGS
from ..timing import ToolFailed, round_robin, run_timed
from ..tools import Tool, available, cp_a, fcp, floor, rclone, rsync, tandem, xcp
from .walkers import build_walkers
from ..trees import cleanup, tree, tree_path, tree_size, verify, work
from ..util import fresh_dir, human, log, rm_rf, size_bytes


def slug(tool):
    return tool.label.split()[0]


def first_mirror(case, title, src, tools, reference, target, throughput=False):
    """Copy SRC into a fresh, empty DEST on every run (the rm -rf of the last DEST is untimed)."""
    dst = work(case, "dst")

    def prepare(tool, rnd):
        fresh_dir(dst)
        return src, dst

    results = round_robin(available(tools), prepare, check=lambda t, s, d: verify(s, d))
    cleanup(work(case))
    files, total = tree_size(src)
    return Report(case, f"{title}, {files} files, {human(total)}", results, reference, target,
                  per_run_bytes=total if throughput else 0)


def case_first():
    src = tree("--files", str(FILES))
    build_walkers()
    # Peers side by side in the same rounds; what each does not preserve shows in the
    # verify column (fcp keeps no mtimes; xcp and fcp write final names directly).
    return first_mirror("first", "first mirror into an empty DEST", src,
                        [tandem(), cp_a(), xcp(), fcp(), floor("copy"), rsync(), rclone()], "cp -a", ("<=", 0.45))


def case_large():
    count = LARGE_COUNT
    args = ("--files", "0", "--large", str(count), "--large-size", LARGE_SIZE)
    need = 2 * count * size_bytes(LARGE_SIZE) + (256 << 20)  # SOURCE + one DEST
    have = shutil.disk_usage(BENCH_DIR).free + (tree_size(tree_path(*args))[1] if os.path.isdir(tree_path(*args)) else 0)
    if have < need:
        sys.exit(f"large: needs {human(need)} free in {BENCH_DIR}, has {human(have)}")
    src = tree(*args)
    return first_mirror("large", f"first mirror of {count} x {LARGE_SIZE} files", src,
                        [tandem(), cp_a(), rsync()], "cp -a", (">=", 0.9), throughput=True)


def prepared_dsts(case, src, tools, fill=None):
    """One DEST per tool, first filled (untimed) by that tool itself, or by the tool that
    `fill` names for its label (the no-op floor writes nothing: the copy floor fills it)."""
    dsts = {}
    for t in tools:
        d = work(case, "dst-" + slug(t))
        fresh_dir(d)
        try:
            run_timed((fill or {}).get(t.label, t).argv(src, d))
        except ToolFailed as e:
            log(f"  {t.label}: initial mirror failed: {e}")
        dsts[t.label] = d
    return dsts


def case_noop():
    src = tree("--files", str(FILES))
    build_walkers()
    tools = available([tandem(), rsync(delete=True), rclone(), floor("noop")])
    log("  initial mirrors (untimed)")
    dsts = prepared_dsts("noop", src, tools, fill={floor("noop").label: floor("copy")})
    results = round_robin(tools, lambda t, rnd: (src, dsts[t.label]), check=lambda t, s, d: verify(s, d))
    cleanup(work("noop"))
    files, total = tree_size(src)
    return Report("noop", f"re-run with nothing to do, {files} files, {human(total)}", results,
                  "rsync -a --delete", ("<=", 0.24))


def case_onechange():
    src = tree("--files", str(FILES))
    ok = src + ".ok"
    marker = open(ok).read()
    victim = None
    for root, dirs, names in os.walk(src):  # a file deep in the tree, the same every time
        dirs.sort()
        names = sorted(n for n in names if n.endswith(".dat"))
        if names and not dirs:
            victim = os.path.join(root, names[len(names) // 2])
            break
    original = open(victim, "rb").read()
    st = os.stat(victim)
    tools = available([tandem(), rsync(delete=True), rclone()])
    log("  initial mirrors (untimed)")
    dsts = prepared_dsts("onechange", src, tools)
    counter = [0]

    def prepare(tool, rnd):
        # Untimed: new bytes (same size) and a new whole-second mtime in the one file.
        counter[0] += 1
        k = counter[0]
        data = bytearray(original)
        data[:8] = k.to_bytes(8, "little")
        with open(victim, "wb") as f:
            f.write(data)
        t = (st.st_mtime_ns // 10**9 + k) * 10**9
        os.utime(victim, ns=(t, t))
        return src, dsts[tool.label]

    os.remove(ok)  # the cached tree is being changed; it is restored below
    try:
        results = round_robin(tools, prepare, check=lambda t, s, d: verify(s, d))
    finally:
        with open(victim, "wb") as f:
            f.write(original)
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        with open(ok, "w") as f:
            f.write(marker)
    cleanup(work("onechange"))
    files, total = tree_size(src)
    return Report("onechange", f"one file changed among {files} files ({os.path.relpath(victim, src)})",
                  results, "rsync -a --delete", None)


def case_excluded():
    """A no-op run over the 100,000-file tree holding an excluded directory of another
    100,000 files (in SOURCE, and in DEST from an earlier run without the rule), against
    the same run over the tree without that directory. Target: within 10 %."""
    plain = tree("--files", str(FILES))
    big = tree_path("--files", str(FILES), "--excluded-dir", str(FILES))
    ok = big + ".ok"
    want = f"{FILES}+{FILES}"
    if not (os.path.exists(ok) and open(ok).read() == want):
        rm_rf(big)
        log(f"  make tree {big} (the {FILES}-file tree plus node_modules/ with {FILES} files)")
        subprocess.run([sys.executable, MKTREE, big, "--files", str(FILES)], check=True)
        subprocess.run([sys.executable, MKTREE, os.path.join(big, "node_modules"), "--files", str(FILES),
                        "--seed", "2"], check=True)
        with open(ok, "w") as f:
            f.write(want)
    with_rule = Tool("tandem",
                     lambda s, d: [TANDEM, *TANDEM_ARGS, "--exclude", "/node_modules/", big, d], TANDEM)
    without = Tool("tandem (tree without the dir)", lambda s, d: [TANDEM, *TANDEM_ARGS, plain, d], TANDEM)
    tools = [with_rule, without]
    log("  initial mirrors (untimed; the excluded dir is copied first, as if the rule came later)")
    d_with, d_without = work("excluded", "dst-with"), work("excluded", "dst-without")
    fresh_dir(d_with)
    fresh_dir(d_without)
    run_timed([TANDEM, big, d_with])
    run_timed([TANDEM, plain, d_without])
    run_timed(with_rule.argv(big, d_with))
    dsts = {with_rule.label: d_with, without.label: d_without}
    results = round_robin(tools, lambda t, rnd: (big if t is with_rule else plain, dsts[t.label]))
    cleanup(work("excluded"))
    return Report("excluded", f"no-op run, {FILES} files plus an excluded directory of {FILES} files",
                  results, without.label, ("<=", 1.10))
