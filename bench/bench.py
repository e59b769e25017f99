#!/usr/bin/env python3
"""Benchmark driver for tandem against cp -a, rsync and rclone. Run it through bench/run.sh,
which installs the peers, builds tandem and passes the environment below.

  bench.py [--list] [CASE...]        default: every batch case (see CASES at the bottom)

Environment (all optional):
  ROUNDS=5            timed runs per tool; tools alternate round-robin (A B C A B C ...)
  FILES=100000        small files in the tree for first/noop/onechange
  LARGE_COUNT=4       files in the tree for `large`
  LARGE_SIZE=1G       size of each of them (mktree syntax: 512, 64K, 1G)
  BENCH_DIR=/dev/shm/tandem-bench   work dir; trees are kept there and reused when the
                      mktree arguments match (BENCH_DIR/trees/<args>, marker <args>.ok)
  TANDEM=path         tandem binary (default REPO/target/release/tandem)
  TANDEM_ARGS="..."   extra arguments placed before SOURCE DEST
  RCLONE_ARGS="..."   extra arguments for rclone sync (default flags: --links -q)
  TOOLS=tandem,rsync  only run tools whose label starts with one of these words
  VERIFY=1            after each tool's first run, check DEST against SOURCE (untimed)
  KEEP_DST=0          1 keeps the destination trees after a case
  RSS=1               0: spawn tools directly instead of under /usr/bin/time (saves ~4 ms per
                      run; the RSS column then has this Python process's RSS as its floor)
  MKTREE=path         tree generator (run.sh sets it)

Each timed run is one child process: wall time from time.perf_counter around spawn+wait,
CPU (user+sys) and peak RSS from os.wait4's rusage (includes the children it waited for,
e.g. rsync's receiver). `sync` runs before every timed run; page-cache dropping is moot on tmpfs.
"""
import datetime
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def env(name, default):
    v = os.environ.get(name, "")
    return v if v != "" else default


ROUNDS = int(env("ROUNDS", "5"))
FILES = int(env("FILES", "100000"))
LARGE_COUNT = int(env("LARGE_COUNT", "4"))
LARGE_SIZE = env("LARGE_SIZE", "1G")
BENCH_DIR = env("BENCH_DIR", "/dev/shm/tandem-bench")
TANDEM = env("TANDEM", os.path.join(REPO, "target", "release", "tandem"))
TANDEM_ARGS = shlex.split(env("TANDEM_ARGS", ""))
RCLONE_ARGS = shlex.split(env("RCLONE_ARGS", "--links -q"))
TOOLS = [t.strip() for t in env("TOOLS", "").split(",") if t.strip()]
VERIFY = env("VERIFY", "1") != "0"
KEEP_DST = env("KEEP_DST", "0") != "0"
MKTREE = env("MKTREE", "")
RESULTS = os.path.join(HERE, "results")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def size_bytes(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    u = text[-1].upper()
    return int(text[:-1]) * units[u] if u in units else int(text)


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


# ---------------------------------------------------------------- tools

@dataclass
class Tool:
    label: str                            # shown in tables; also what TOOLS matches
    argv: Callable[[str, str], List[str]]  # (src, dst) -> command line
    needs: str                            # executable that must exist


def tandem():
    return Tool("tandem", lambda s, d: [TANDEM, *TANDEM_ARGS, s, d], TANDEM)


def cp_a():
    return Tool("cp -a", lambda s, d: ["cp", "-a", s + "/.", d], "cp")


def rsync(delete=False):
    flags = ["-a", "--delete"] if delete else ["-a"]
    return Tool("rsync " + " ".join(flags), lambda s, d: ["rsync", *flags, s + "/", d + "/"], "rsync")


def rclone():
    # --links: rclone skips symlinks otherwise (local->local it recreates them as symlinks).
    return Tool("rclone sync", lambda s, d: ["rclone", "sync", *RCLONE_ARGS, s, d], "rclone")


def available(tools):
    out = []
    for t in tools:
        if TOOLS and not any(t.label.startswith(w) for w in TOOLS):
            continue
        if shutil.which(t.needs) is None and not os.access(t.needs, os.X_OK):
            log(f"  skip {t.label}: {t.needs} not found")
            continue
        out.append(t)
    return out


# ---------------------------------------------------------------- timing

@dataclass
class Sample:
    wall: float
    cpu: float
    rss_kib: int


class ToolFailed(Exception):
    pass


# Linux carries a process's peak RSS across exec, so a child spawned straight from this
# Python process would report at least Python's own RSS. GNU time forks the tool from a small
# process; its %M is the tool's own peak. Without /usr/bin/time, RSS has Python's as a floor.
# It adds about 4 ms of wall time per run; RSS=0 turns it off.
GNU_TIME = "/usr/bin/time" if env("RSS", "1") != "0" and os.access("/usr/bin/time", os.X_OK) else None


def run_timed(argv) -> Sample:
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        cmd = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv] if GNU_TIME else argv
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            tail = err.read()[-600:].decode(errors="replace").strip()
            raise ToolFailed(f"exit {p.returncode}: {shlex.join(argv)}\n{tail}")
        peak = ru.ru_maxrss
        if GNU_TIME:
            try:
                peak = int(rss.read().split()[-1])
            except (ValueError, IndexError):
                pass
    return Sample(wall, ru.ru_utime + ru.ru_stime, peak)


def sh(*argv):
    subprocess.run(argv, check=True)


def rm_rf(path):
    if os.path.lexists(path):
        sh("rm", "-rf", "--", path)


def fresh_dir(path):
    rm_rf(path)
    os.makedirs(path)


# ---------------------------------------------------------------- trees

def tree_path(*args) -> str:
    return os.path.join(BENCH_DIR, "trees", "-".join(a.lstrip("-") for a in args).replace("/", "_"))


def tree(*args) -> str:
    """A mktree tree for these arguments, made once and reused while the arguments match."""
    path = tree_path(*args)
    ok = path + ".ok"
    want = shlex.join(args)
    if os.path.exists(ok) and open(ok).read() == want and os.path.isdir(path):
        log(f"  reuse tree {path}")
        return path
    if not MKTREE or not os.path.exists(MKTREE):
        sys.exit(f"bench.py: mktree not found (MKTREE={MKTREE!r}); run through bench/run.sh")
    rm_rf(ok)
    rm_rf(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log(f"  make tree {path} ({want})")
    sh(sys.executable, MKTREE, path, *args)
    os.sync()
    with open(ok, "w") as f:
        f.write(want)
    return path


def tree_size(path):
    files = total = 0
    for root, _, names in os.walk(path):
        for n in names:
            files += 1
            total += os.lstat(os.path.join(root, n)).st_size
    return files, total


# ---------------------------------------------------------------- verification

def snapshot(root):
    """rel path -> comparable metadata (dir mtimes are left out: rclone does not keep them)."""
    out = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel)) as it:
            for e in it:
                r = os.path.join(rel, e.name)
                st = e.stat(follow_symlinks=False)
                if e.is_symlink():
                    out[r] = ("link", os.readlink(e.path))
                elif e.is_dir(follow_symlinks=False):
                    out[r] = ("dir", st.st_mode & 0o7777)
                    stack.append(r)
                else:
                    out[r] = ("file", st.st_size, st.st_mtime_ns, st.st_mode & 0o7777)
    return out


def verify(src, dst) -> str:
    """'ok' or a short description of how DEST differs from SOURCE (metadata + content)."""
    a, b = snapshot(src), snapshot(dst)
    missing = [k for k in a if k not in b]
    extra = [k for k in b if k not in a]
    differ = [k for k in a if k in b and a[k] != b[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} extra (e.g. {extra[0]})")
    if differ:
        k = differ[0]
        problems.append(f"{len(differ)} metadata diffs (e.g. {k}: {a[k]} vs {b[k]})")
    if not problems:
        r = subprocess.run(["diff", "-rq", "--no-dereference", src, dst], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            lines = r.stdout.splitlines()
            problems.append(f"{len(lines)} content diffs (e.g. {lines[0] if lines else '?'})")
    return "ok" if not problems else "; ".join(problems)


# ---------------------------------------------------------------- round-robin runner

@dataclass
class Result:
    tool: Tool
    samples: List[Sample] = field(default_factory=list)
    error: Optional[str] = None
    check: str = "-"


def round_robin(tools, prepare, check=None) -> List[Result]:
    """ROUNDS rounds of A B C ...; prepare(tool, round) does the untimed setup and returns
    (src, dst); check(tool, src, dst) runs untimed after each tool's first run."""
    results = [Result(t) for t in tools]
    for rnd in range(ROUNDS):
        for res in results:
            if res.error:
                continue
            src, dst = prepare(res.tool, rnd)
            os.sync()
            try:
                s = run_timed(res.tool.argv(src, dst))
            except ToolFailed as e:
                res.error = str(e)
                log(f"  round {rnd + 1} {res.tool.label:<18} FAILED {e}")
                continue
            res.samples.append(s)
            log(f"  round {rnd + 1} {res.tool.label:<18} {s.wall:8.3f} s wall {s.cpu:8.3f} s cpu")
            if rnd == 0 and check and VERIFY:
                res.check = check(res.tool, src, dst)
                if res.check != "ok":
                    log(f"  verify {res.tool.label}: {res.check}")
    return results


# ---------------------------------------------------------------- report

@dataclass
class Report:
    case: str
    title: str
    results: List[Result]
    reference: str            # label of the tool the ratio is taken against
    target: Optional[tuple]   # ("<=", 0.6) or (">=", 0.9) for tandem's ratio
    per_run_bytes: int = 0    # > 0: show throughput, and the ratio is of throughputs
    notes: List[str] = field(default_factory=list)


def render(rep: Report) -> str:
    med = {r.tool.label: statistics.median(s.wall for s in r.samples) for r in rep.results if r.samples}
    ref = med.get(rep.reference)
    thr = rep.per_run_bytes > 0
    head = ["tool", "median wall s", "median CPU s", "max RSS MiB"]
    if thr:
        head.append("GiB/s")
    head += [f"ratio vs {rep.reference}" + (" (throughput)" if thr else ""), "target", "verify", "wall s per run"]
    rows = []
    for r in rep.results:
        label = r.tool.label
        if not r.samples:
            rows.append([label, "FAILED", "", "", *([""] if thr else []), "", "", r.check,
                         (r.error or "").splitlines()[0]])
            continue
        wall = med[label]
        cpu = statistics.median(s.cpu for s in r.samples)
        rss = max(s.rss_kib for s in r.samples) / 1024
        row = [label, f"{wall:.3f}", f"{cpu:.3f}", f"{rss:.0f}"]
        if thr:
            row.append(f"{rep.per_run_bytes / wall / (1 << 30):.2f}")
        ratio = None
        if ref:
            ratio = ref / wall if thr else wall / ref
        row.append(f"{ratio:.2f}" if ratio is not None else "-")
        tgt = ""
        if label == "tandem" and rep.target:
            op, val = rep.target
            tgt = f"{op} {val:.2f}"
            if r.check not in ("ok", "-"):
                tgt += " n/a (wrong output)"
            elif ratio is not None:
                ok = ratio <= val if op == "<=" else ratio >= val
                tgt += " met" if ok else " MISSED"
        row.append(tgt)
        row.append(r.check if not r.error else "failed later: " + r.error.splitlines()[0])
        row.append(" ".join(f"{s.wall:.3f}" for s in r.samples))
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def version(argv):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=20).stdout
        return out.strip().splitlines()[0] if out.strip() else "?"
    except Exception:
        return "n/a"


def environment_notes():
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip() or "no commit"
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True).stdout.strip()
    built = datetime.datetime.fromtimestamp(os.path.getmtime(TANDEM)).isoformat(timespec="seconds") \
        if os.path.exists(TANDEM) else "missing"
    return [
        f"host: {platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"load {os.getloadavg()[0]:.2f} at start",
        f"tandem: {shlex.join([TANDEM, *TANDEM_ARGS])} (git {rev}{', src modified' if dirty else ''}, built {built})",
        f"peers: {version(['cp', '--version'])}; {version(['rsync', '--version'])}; "
        f"{version(['rclone', 'version']) if shutil.which('rclone') else 'rclone n/a'}",
        f"work dir: {BENCH_DIR}; rounds: {ROUNDS}, round-robin; `sync` before each timed run",
    ]


def emit(rep: Report):
    table = render(rep)
    print(f"\n== {rep.case}: {rep.title}\n{table}\n", flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    path = os.path.join(RESULTS, f"{rep.case}-{stamp}.md")
    cmds = [f"- {r.tool.label}: `{shlex.join(r.tool.argv('SRC', 'DST'))}`" for r in rep.results]
    with open(path, "w") as f:
        f.write(f"# {rep.case}: {rep.title}\n\n{datetime.datetime.now().isoformat(timespec='seconds')}\n\n")
        f.write(table + "\n\n")
        f.write("Ratio: tandem's median wall time over the reference's (lower is better)"
                if not rep.per_run_bytes else
                "Ratio: tandem's throughput over the reference's (higher is better)")
        f.write("; CPU is user+sys of the process and the children it waited for.\n\n")
        f.write("Commands:\n" + "\n".join(cmds) + "\n\n")
        f.write("\n".join(f"- {n}" for n in rep.notes + environment_notes()) + "\n")
    print(f"(written to {os.path.relpath(path, REPO)})", flush=True)


# ---------------------------------------------------------------- cases

def work(*parts):
    return os.path.join(BENCH_DIR, "work", *parts)


def slug(tool):
    return tool.label.split()[0]


def cleanup(*paths):
    if not KEEP_DST:
        for p in paths:
            rm_rf(p)


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
    return first_mirror("first", "first mirror into an empty DEST", src,
                        [tandem(), cp_a(), rsync(), rclone()], "cp -a", ("<=", 0.6))


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


def prepared_dsts(case, src, tools):
    """One DEST per tool, first filled (untimed) by that tool itself."""
    dsts = {}
    for t in tools:
        d = work(case, "dst-" + slug(t))
        fresh_dir(d)
        try:
            run_timed(t.argv(src, d))
        except ToolFailed as e:
            log(f"  {t.label}: initial mirror failed: {e}")
        dsts[t.label] = d
    return dsts


def case_noop():
    src = tree("--files", str(FILES))
    tools = available([tandem(), rsync(delete=True), rclone()])
    log("  initial mirrors (untimed)")
    dsts = prepared_dsts("noop", src, tools)
    results = round_robin(tools, lambda t, rnd: (src, dsts[t.label]), check=lambda t, s, d: verify(s, d))
    cleanup(work("noop"))
    files, total = tree_size(src)
    return Report("noop", f"re-run with nothing to do, {files} files, {human(total)}", results,
                  "rsync -a --delete", ("<=", 0.4))


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


@dataclass
class Case:
    fn: Callable[[], Report]
    help: str
    batch: bool = True  # part of the default run


# New cases: a function returning a Report (or printing its own table), registered here.
# batch=False keeps a case out of the default run. Planned, not written yet:
#   poll-cpu       CPU per poll cycle of `tandem --watch` in poll mode on an idle tree
#   watch-latency  time from a change in SOURCE to its arrival in DEST under --watch
#   memory         peak RSS against tree size (Sample.rss_kib already records it)
#   sshfs          first/noop with SOURCE or DEST on sshfs (../shared/bench/netfs.sh up/down)
CASES: Dict[str, Case] = {
    "first": Case(case_first, "first mirror of FILES files: tandem, cp -a, rsync -a, rclone sync"),
    "noop": Case(case_noop, "re-run with nothing to do: tandem, rsync -a --delete, rclone sync"),
    "onechange": Case(case_onechange, "one file changed among FILES: tandem, rsync -a --delete, rclone sync"),
    "large": Case(case_large, "first mirror of LARGE_COUNT x LARGE_SIZE: tandem, cp -a, rsync -a"),
}


def main(argv):
    if argv and argv[0] in ("-h", "--help", "--list", "-l"):
        print(__doc__ if argv[0] in ("-h", "--help") else "")
        for name, c in CASES.items():
            print(f"  {name:<10} {c.help}{'' if c.batch else ' (not in default run)'}")
        return 0
    names = argv or [n for n, c in CASES.items() if c.batch]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s): {' '.join(unknown)}; known: {' '.join(CASES)}", file=sys.stderr)
        return 2
    os.makedirs(BENCH_DIR, exist_ok=True)
    for n in names:
        log(f"== {n}: {CASES[n].help}")
        rep = CASES[n].fn()
        if rep is not None:
            emit(rep)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
