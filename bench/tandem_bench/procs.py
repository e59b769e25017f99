"""Long-lived processes for the watch cases: `tandem --watch` with its JSON events, lsyncd, the
sshfs mount of bench/netfs.sh; waiting for conditions in DEST; CPU and memory from /proc."""
import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Optional

from .settings import NETFS, TANDEM, TANDEM_ARGS
from .timing import ToolFailed
from .util import log, sh

# The cases below run `tandem --watch` (and lsyncd) as long-lived processes and time how fast
# changes arrive, how much CPU idle polling costs and how much memory the watch state takes.

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def write_and_time(sub, dsub, name, data, timeout, dw: Optional[DirWatch] = None):
    """Writes `data` to SOURCE's `sub/name`; returns the seconds until DEST's `dsub/name`
    holds it, or None when it did not within `timeout`."""
    t0 = time.perf_counter()
    with open(os.path.join(sub, name), "wb") as f:
        f.write(data)
    t1 = wait_until(lambda: has_content(os.path.join(dsub, name), data), timeout, dw)
    return None if t1 is None else t1 - t0


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
