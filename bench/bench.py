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

Named cases (not in the default run; see each case_* function):
  poll     POLL_CYCLES=10 idle cycles of `--poll 1s` on FILES files: CPU/cycle vs find and rsync;
           POLL_WRITES=10 writes for the poll latency
  latency  LAT_FILES=1000 tree, LAT_SAMPLES=100 writes per watcher (tandem --debounce 0 / 50ms, lsyncd)
  memory   MEM_FILES=1000000 files of 0..MEM_MAX=16 bytes; MEM_POLL=10s, MEM_CYCLES=2, MEM_MODES=poll,native
  rename   RENAME_SIZE=1G file and a RENAME_DIR_FILES=10000 dir, RENAME_N=5 renames each per round
  sshfs    SSHFS_FILES=20000 tree served by bench/netfs.sh; tandem --scan-threads 4..32, rsync
  walkers  bench/walkers on FILES (WALK_THREADS=max(4, CPUs)) and on sshfs (WALK_NET_THREADS=16,
           WALK_SSHFS=0 skips it)

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


# ---------------------------------------------------------------- watch-mode helpers
# The cases below run `tandem --watch` (and lsyncd) as long-lived processes and time how fast
# changes arrive, how much CPU idle polling costs and how much memory the watch state takes.

CLK_TCK = os.sysconf("SC_CLK_TCK")
NETFS = os.path.join(HERE, "netfs.sh")


def proc_cpu(pid) -> float:
    """utime+stime of a live process in seconds (/proc/<pid>/stat, clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_status_kib(pid, key) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def pct(values, p):
    """Nearest-rank percentile (p in 0..100)."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))]


def ms(x):
    return "-" if x is None else f"{x * 1000:.1f}"


class DirWatch:
    """inotify (through ctypes) on a few directories, used only to wake up when DEST changes;
    the condition is always re-checked with stat/read. Falls back to plain sleeping."""
    MASK = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400  # modify attrib close_write moved create delete

    def __init__(self, *dirs):
        import ctypes
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                return
            for d in dirs:
                if libc.inotify_add_watch(fd, os.fsencode(d), self.MASK) < 0:
                    os.close(fd)
                    return
            self.fd = fd
        except (OSError, AttributeError):
            self.fd = -1

    def wait(self, timeout):
        if self.fd < 0:
            time.sleep(min(timeout, 0.0002))
            return
        import select
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        if p.poll(timeout * 1000):
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def wait_until(pred, timeout, dw: Optional[DirWatch] = None, step=0.001):
    """perf_counter() when pred() first held (checked on every DEST event and every `step`
    seconds), or None after `timeout` seconds."""
    deadline = time.perf_counter() + timeout
    while True:
        if pred():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            return None
        if dw:
            dw.wait(step)
        else:
            time.sleep(step)


def has_content(path, data):
    try:
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == data
    except OSError:
        return False


class Watcher:
    """`tandem --json --watch ... SRC DST` with its JSON events collected by a reader thread."""

    def __init__(self, src, dst, *args):
        import threading
        self.argv = [TANDEM, *TANDEM_ARGS, "--json", "--watch", *args, src, dst]
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, bufsize=1)
        self.events = []  # (perf_counter at arrival, event dict)
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        import json
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append((time.perf_counter(), ev))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def pid(self):
        return self.p.pid

    def cycles(self):
        with self.cond:
            return [ev for _, ev in self.events if ev.get("event") == "cycle"]

    def strategy(self):
        with self.cond:
            return next((ev for _, ev in self.events if ev.get("event") == "strategy"), {})

    def wait_cycle(self, number, timeout=600.0):
        """The `cycle` event with this number (waits for it); raises if tandem ends first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for _, ev in self.events:
                    if ev.get("event") == "cycle" and ev.get("cycle", -1) >= number:
                        return ev
                if self.p.poll() is not None and not self.thread.is_alive():
                    raise ToolFailed(f"tandem exited ({self.p.returncode}) before cycle {number}: "
                                     f"{self.stderr_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ToolFailed(f"no cycle {number} within {timeout:.0f} s: {shlex.join(self.argv)}")
                self.cond.wait(min(left, 0.5))

    def last_cycle_no(self):
        c = self.cycles()
        return c[-1]["cycle"] if c else -1

    def stderr_tail(self):
        self.err.seek(0)
        return self.err.read()[-600:].decode(errors="replace").strip()

    def stop(self) -> int:
        """SIGINT, as a user would; returns the exit code (SIGKILL after 60 s)."""
        import signal
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            rc = self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.thread.join(5)
        if rc != 0:
            log(f"  tandem exited {rc} on SIGINT: {self.stderr_tail()}")
        return rc


class Lsyncd:
    """lsyncd with default.rsync (it spawns `rsync` per batch of events), delay = 0."""

    def __init__(self, src, dst, confdir):
        os.makedirs(confdir, exist_ok=True)
        self.conf = os.path.join(confdir, "lsyncd.conf.lua")
        self.log = os.path.join(confdir, "lsyncd.log")
        with open(self.conf, "w") as f:
            f.write('settings { nodaemon = true, logfile = "%s", statusFile = "%s", statusInterval = 3600 }\n'
                    'sync { default.rsync, source = "%s", target = "%s", delay = 0,\n'
                    '       rsync = { archive = true } }\n'
                    % (self.log, os.path.join(confdir, "status"), src, dst))
        self.p = subprocess.Popen(["lsyncd", self.conf], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        import signal
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def emit_table(case, title, head, rows, notes=(), extra=""):
    """Print a free-form table and write it to bench/results/<case>-<date>.md."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    table = "\n".join(lines)
    print(f"\n== {case}: {title}\n{table}\n{extra}", flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    path = os.path.join(RESULTS, f"{case}-{stamp}.md")
    with open(path, "w") as f:
        f.write(f"# {case}: {title}\n\n{datetime.datetime.now().isoformat(timespec='seconds')}\n\n")
        f.write(table + "\n\n" + (extra + "\n\n" if extra else ""))
        f.write("\n".join(f"- {n}" for n in list(notes) + environment_notes()) + "\n")
    print(f"(written to {os.path.relpath(path, REPO)})", flush=True)


def target_text(value, op, limit, unit="", what=""):
    """'median <= 10 ms met' and the like; op is one of <=, <, >=."""
    text = f"{what + ' ' if what else ''}{op} {limit:g}{' ' + unit if unit else ''}"
    if value is None:
        return text + " n/a"
    ok = {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[op]
    return f"{text} {'met' if ok else 'MISSED'}"


def copy_tree(src, dst):
    rm_rf(dst)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    sh("cp", "-a", src, dst)


# ---------------------------------------------------------------- poll: CPU per idle cycle

POLL_CYCLES = int(env("POLL_CYCLES", "10"))
POLL_WRITES = int(env("POLL_WRITES", "10"))


def case_poll():
    src = tree("--files", str(FILES))
    files, total = tree_size(src)
    dst_t, dst_r = work("poll", "dst-tandem"), work("poll", "dst-rsync")
    fresh_dir(dst_t)
    fresh_dir(dst_r)
    log("  initial mirrors (untimed)")
    run_timed([TANDEM, src, dst_t])
    run_timed(["rsync", "-a", "--delete", src + "/", dst_r + "/"])
    k = POLL_CYCLES
    t_cpu, t_wall, f_cpu, f_wall, r_cpu, r_wall = [], [], [], [], [], []
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
                t0 = time.perf_counter()
                with open(os.path.join(sub, name), "wb") as f:
                    f.write(data)
                t1 = wait_until(lambda: has_content(os.path.join(dsub, name), data), 30, dw)
                lat.append(None if t1 is None else t1 - t0)
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
         target_text(ratio, "<=", 1.5), " ".join(f"{x:.3f}" for x in t_cpu)],
        ["find SRC -printf '%s %T@ %m\\n'", f"{fc:.3f}", f"{statistics.median(f_wall):.3f}", "1.00", "",
         " ".join(f"{x:.3f}" for x in f_cpu)],
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
               ], extra=lat_line)


# ---------------------------------------------------------------- latency: native watch

LAT_FILES = int(env("LAT_FILES", "1000"))
LAT_SAMPLES = int(env("LAT_SAMPLES", "100"))


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
            t0 = time.perf_counter()
            with open(os.path.join(sub, name), "wb") as f:
                f.write(data)
            t1 = wait_until(lambda: has_content(os.path.join(dsub, name), data), 10, dw)
            out.append(None if t1 is None else t1 - t0)
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


# ---------------------------------------------------------------- memory per tracked entry

MEM_FILES = int(env("MEM_FILES", "1000000"))
MEM_MAX = env("MEM_MAX", "16")
MEM_POLL = env("MEM_POLL", "10s")
MEM_CYCLES = int(env("MEM_CYCLES", "2"))
MEM_MODES = [m for m in env("MEM_MODES", "poll,native").split(",") if m]


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
        log(f"  {mode}: VmRSS after sync {a0 / 1048576:.1f} MiB ({per0:.0f} B/entry), max {apeak / 1048576:.1f} "
            f"MiB, HWM {ahwm / 1048576:.1f} MiB")
        rows.append([f"tandem --watch {' '.join(margs)} ({strat})", f"{b0 / 1048576:.1f}", f"{a0 / 1048576:.1f}",
                     f"{apeak / 1048576:.1f}", f"{ahwm / 1048576:.1f}", f"{per0:.0f}", f"{perpeak:.0f}",
                     f"{perhwm:.0f}", target_text(max(per0, perpeak), "<=", 200, "B")])
    cleanup(work("memory"))
    emit_table("memory", f"resident memory per tracked entry, {entries} entries (files {MEM_FILES}, 0..{MEM_MAX} B)",
               ["watcher", "baseline RSS MiB (empty tree)", "RSS after cycle 0 MiB", f"max RSS over {MEM_CYCLES} "
                "poll cycles MiB", "VmHWM MiB", "B/entry after sync", "B/entry max", "B/entry HWM (peak)",
                "target (steady)"], rows,
               notes=notes + ["B/entry = (RSS - RSS of the same watcher on an empty tree) / entries in SOURCE "
                              "(files + dirs); DEST pre-synced, so cycle 0 is a no-op scan of both sides",
                              "VmHWM includes the initial sync, when SOURCE and DEST snapshots are both held"])


# ---------------------------------------------------------------- rename

RENAME_N = int(env("RENAME_N", "5"))
RENAME_SIZE = env("RENAME_SIZE", "1G")
RENAME_DIR_FILES = int(env("RENAME_DIR_FILES", "10000"))


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


# ---------------------------------------------------------------- sshfs

SSHFS_FILES = int(env("SSHFS_FILES", "20000"))


class SshfsMount:
    """`netfs.sh up EXPORT MNT` ... `netfs.sh down MNT` (sshfs over a local sshd, no caching)."""

    def __init__(self, export, mnt):
        self.export, self.mnt = export, mnt

    def __enter__(self):
        if not os.path.exists(NETFS):
            sys.exit(f"sshfs: {NETFS} not found")
        subprocess.run(["sh", NETFS, "down", self.mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.makedirs(self.mnt, exist_ok=True)
        sh("sh", NETFS, "up", self.export, self.mnt)
        return self.mnt

    def __exit__(self, *exc):
        subprocess.run(["sh", NETFS, "down", self.mnt])
        return False


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


# ---------------------------------------------------------------- walkers

WALKERS_DIR = os.path.join(HERE, "walkers")
WALKERS_BIN = os.path.join(WALKERS_DIR, "target", "release", "walkers")


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


def case_walkers():
    if env("SKIP_BUILD", "0") != "1" or not os.access(WALKERS_BIN, os.X_OK):
        log("  cargo build --release (bench/walkers)")
        sh("cargo", "build", "--release", "--quiet", "--manifest-path", os.path.join(WALKERS_DIR, "Cargo.toml"))
    names = subprocess.run([WALKERS_BIN, "--list"], stdout=subprocess.PIPE, text=True).stdout.split()
    notes = [f"walkers built: {' '.join(names)}" + ("" if "dua" in names else " (dua-core did not build: skipped)"),
             "each walk lstat()s every entry (hidden included), follows no symlink, counts entries and bytes; "
             "wall and CPU are of the whole process",
             "rayon (tandem-like): one rayon task per directory, std read_dir + DirEntry::metadata (fstatat on the "
             "open dir fd), like src/snapshot.rs; jwalk: lstat by path in process_read_dir on its pool; ignore: "
             "WalkParallel, filters off, DirEntry::metadata; dua: dua-core::walk, Order::Completion"]
    local_threads = int(env("WALK_THREADS", str(max(4, os.cpu_count() or 1))))
    src = tree("--files", str(FILES))
    tools = available([walker_tool(n, local_threads) for n in names])
    results = round_robin(tools, lambda t, rnd: (src, ""), check=walker_check)
    files, total = tree_size(src)
    emit(Report("walkers", f"walkers on tmpfs, {files} files, {local_threads} threads", results,
                tools[0].label, None, notes=notes + [fastest(results)]))
    if env("WALK_SSHFS", "1") == "1":
        net_threads = int(env("WALK_NET_THREADS", "16"))
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


@dataclass
class Case:
    fn: Callable[[], Report]
    help: str
    batch: bool = True  # part of the default run


# Cases: a function returning a Report (or printing its own table and returning None),
# registered here. batch=False keeps a case out of the default run.
CASES: Dict[str, Case] = {
    "first": Case(case_first, "first mirror of FILES files: tandem, cp -a, rsync -a, rclone sync"),
    "noop": Case(case_noop, "re-run with nothing to do: tandem, rsync -a --delete, rclone sync"),
    "onechange": Case(case_onechange, "one file changed among FILES: tandem, rsync -a --delete, rclone sync"),
    "large": Case(case_large, "first mirror of LARGE_COUNT x LARGE_SIZE: tandem, cp -a, rsync -a"),
    "excluded": Case(case_excluded, "no-op with an excluded directory of FILES files vs the tree without it",
                     batch=False),
    "poll": Case(case_poll, "CPU per idle --poll 1s cycle on FILES files vs find and rsync; poll latency",
                 batch=False),
    "latency": Case(case_latency, "native watch latency, small files: tandem --debounce 0 / 50ms, lsyncd",
                    batch=False),
    "memory": Case(case_memory, "RSS per tracked entry while watching MEM_FILES (1,000,000) files", batch=False),
    "rename": Case(case_rename, "a 1 GiB file and a 10,000-file dir renamed while watching (native, poll)",
                   batch=False),
    "sshfs": Case(case_sshfs, "no-op run with SOURCE on sshfs: tandem (--scan-threads 4..32) vs rsync; "
                  "one poll cycle", batch=False),
    "walkers": Case(case_walkers, "directory walkers (bench/walkers: rayon, jwalk, ignore, dua-core) on "
                    "tmpfs and sshfs", batch=False),
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
