"""One timed child process (wall, CPU, peak RSS) and the round-robin runner over tools."""
import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import List, Optional

from .settings import ROUNDS, RSS, VERIFY
from .tools import Tool
from .util import log


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_kib: int
    # CPU of the whole machine during the run (every process: an ssh/sftp-server or S3
    # server doing the other half of the work shows here, not in `cpu`); None off Linux.
    machine_cpu: Optional[float] = None


def machine_busy():
    """Seconds of CPU the whole machine has spent busy (user, nice, system, irq, softirq,
    steal excluded), from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        ticks = sum(int(fields[i]) for i in (1, 2, 3, 6, 7))
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class ToolFailed(Exception):
    pass


# Linux carries a process's peak RSS across exec, so a child spawned straight from this
# Python process would report at least Python's own RSS. GNU time forks the tool from a small
# process; its %M is the tool's own peak. Without /usr/bin/time, RSS has Python's as a floor.
# It adds about 4 ms of wall time per run; RSS=0 turns it off.
GNU_TIME = "/usr/bin/time" if RSS and os.access("/usr/bin/time", os.X_OK) else None


def run_timed(argv) -> Sample:
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        cmd = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv] if GNU_TIME else argv
        b0 = machine_busy()
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        b1 = machine_busy()
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
    machine = b1 - b0 if b0 is not None and b1 is not None else None
    return Sample(wall, ru.ru_utime + ru.ru_stime, peak, machine)


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
            machine = f" ({s.machine_cpu:.3f} s machine-wide)" if s.machine_cpu is not None else ""
            log(f"  round {rnd + 1} {res.tool.label:<18} {s.wall:8.3f} s wall {s.cpu:8.3f} s cpu{machine}")
            if rnd == 0 and check and VERIFY:
                res.check = check(res.tool, src, dst)
                if res.check != "ok":
                    log(f"  verify {res.tool.label}: {res.check}")
    return results
