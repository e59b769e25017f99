"""Tables of medians and ratios: printed, and written to bench/results/<case>-<date>.md with the
commands and the environment."""
import datetime
import os
import platform
import shlex
import shutil
import statistics
import subprocess
from dataclasses import dataclass, field
from typing import List, Optional

from .settings import BENCH_DIR, REPO, RESULTS, ROUNDS, TANDEM, TANDEM_ARGS
from .timing import Result


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
    head = ["tool", "median wall s", "median CPU s", "median machine CPU s", "max RSS MiB"]
    if thr:
        head.append("GiB/s")
    head += [f"ratio vs {rep.reference}" + (" (throughput)" if thr else ""), "target", "verify", "wall s per run"]
    rows = []
    for r in rep.results:
        label = r.tool.label
        if not r.samples:
            rows.append([label, "FAILED", "", "", "", *([""] if thr else []), "", "", r.check,
                         (r.error or "").splitlines()[0]])
            continue
        wall = med[label]
        cpu = statistics.median(s.cpu for s in r.samples)
        rss = max(s.rss_kib for s in r.samples) / 1024
        machine = [s.machine_cpu for s in r.samples if s.machine_cpu is not None]
        row = [label, f"{wall:.3f}", f"{cpu:.3f}", f"{statistics.median(machine):.3f}" if machine else "-",
               f"{rss:.0f}"]
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
