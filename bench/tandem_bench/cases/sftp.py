"""sftp: a remote DEST over ssh on loopback (bench/netfs.sh's private sshd on 127.0.0.1):
first mirror, no-op re-run and one changed file, tandem (SFTP, `host:path`) against
`rsync -a --delete -e ssh` and `rclone sync` to an sftp remote; and watch mode's latency
for a small file into the remote DEST."""
import os
import random
import shlex
import statistics
import subprocess

from ..procs import Watcher
from ..report import Report, emit, emit_table, target_text
from ..settings import LAT_FILES, LAT_SAMPLES, NETFS, SFTP_FILES, SFTP_RCLONE_FIRST, TANDEM, TANDEM_ARGS
from ..timing import round_robin, run_timed
from ..tools import Tool, available
from ..trees import cleanup, tree, tree_size, verify, work
from ..util import fresh_dir, human, log, ms, pct
from .latency import latency_samples


def sshd():
    """Starts (or finds) netfs.sh's sshd; returns (port, state dir)."""
    out = subprocess.run(["sh", NETFS, "serve"], check=True, capture_output=True, text=True).stdout.split()
    return out[0], out[1]


def tools(port, state):
    ssh = (f"ssh -F /dev/null -p {port} -i {state}/id -o IdentitiesOnly=yes "
           f"-o UserKnownHostsFile={state}/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes")
    rclone_remote = (f":sftp,host=127.0.0.1,port={port},user=root,key_file={state}/id,"
                     f"known_hosts_file={state}/known_hosts")
    return [
        Tool("tandem", lambda s, d: [TANDEM, *TANDEM_ARGS, "-e", ssh, s, "root@127.0.0.1:" + d], TANDEM),
        Tool("rsync -a --delete -e ssh", lambda s, d: ["rsync", "-a", "--delete", "-e", ssh, s + "/",
                                                         "root@127.0.0.1:" + d + "/"], "rsync"),
        Tool("rclone sync (sftp)", lambda s, d: ["rclone", "sync", "-q", "--links", s, rclone_remote + ":" + d],
             "rclone"),
    ]


def check(tool, src, dst):
    # rclone keeps symlinks as .rclonelink files: not comparable.
    return "-" if tool.label.startswith("rclone") else verify(src, dst, whole_seconds=True)


def case_sftp():
    port, state = sshd()
    src = tree("--files", str(SFTP_FILES))
    files, total = tree_size(src)
    every = available(tools(port, state))
    by = {t.label: t for t in every}
    fast = [t for t in every if not t.label.startswith("rclone")]
    rsync = by.get("rsync -a --delete -e ssh")
    reports = []

    # First mirror into an empty remote DEST, every round. rclone writes each file with
    # its own round trips (about 1,100 s for 20,000 files here, issue 13): once, if asked.
    dst = work("sftp", "first")

    def fresh(tool, rnd):
        fresh_dir(dst)
        return src, dst

    first_tools = fast + ([by["rclone sync (sftp)"]] if SFTP_RCLONE_FIRST and "rclone sync (sftp)" in by else [])
    results = round_robin(first_tools, fresh, check=check)
    reports.append(Report("sftp-first", f"first mirror to a remote DEST over ssh (127.0.0.1), {files} files, "
                          f"{human(total)}", results, "rsync -a --delete -e ssh", ("<=", 1.0)))

    # No-op and one change: each tool's DEST first filled untimed (rclone's by rsync, which
    # leaves what rclone sync would: same sizes and whole-second mtimes).
    log("  initial mirrors (untimed)")
    dsts = {}
    for t in every:
        d = work("sftp", "dst-" + t.label.split()[0])
        fresh_dir(d)
        filler = rsync if (t.label.startswith("rclone") and rsync) else t
        run_timed(filler.argv(src, d))
        if t.label.startswith("rclone"):
            run_timed(t.argv(src, d))  # let rclone settle what it keeps differently (links)
        dsts[t.label] = d
    results = round_robin(every, lambda t, rnd: (src, dsts[t.label]),
                          check=check)
    reports.append(Report("sftp-noop", f"no-op re-run to a remote DEST over ssh, {files} files", results,
                          "rsync -a --delete -e ssh", ("<=", 0.6)))

    victim = None
    for root, dirs, names in os.walk(src):
        dirs.sort()
        names = sorted(n for n in names if n.endswith(".dat"))
        if names and not dirs:
            victim = os.path.join(root, names[len(names) // 2])
            break
    original = open(victim, "rb").read()
    st = os.stat(victim)
    ok = src + ".ok"
    marker = open(ok).read()
    counter = [0]

    def change(tool, rnd):
        counter[0] += 1
        data = bytearray(original)
        data[:8] = counter[0].to_bytes(8, "little")
        with open(victim, "wb") as f:
            f.write(data)
        t = (st.st_mtime_ns // 10**9 + counter[0]) * 10**9
        os.utime(victim, ns=(t, t))
        return src, dsts[tool.label]

    os.remove(ok)
    try:
        results = round_robin(every, change, check=check)
    finally:
        with open(victim, "wb") as f:
            f.write(original)
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        with open(ok, "w") as f:
            f.write(marker)
    reports.append(Report("sftp-onechange", f"one file changed among {files}, remote DEST over ssh", results,
                          "rsync -a --delete -e ssh", ("<=", 0.6),
                          notes=[f"sshd: bench/netfs.sh serve (127.0.0.1:{port}, keys in {state}); "
                                 "DEST on the same tmpfs as SOURCE; every tool runs its own ssh"]))
    cleanup(work("sftp"))
    watch_latency(port, state)
    for r in reports[:-1]:
        emit(r)
    return reports[-1]


def watch_latency(port, state):
    """`tandem --watch --debounce 0 SRC root@127.0.0.1:DST`: a small file written in SOURCE,
    timed until DEST (on this machine's tmpfs, through the sshd) holds it."""
    ssh = (f"ssh -F /dev/null -p {port} -i {state}/id -o IdentitiesOnly=yes "
           f"-o UserKnownHostsFile={state}/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes")
    src = work("sftp", "lat-src")
    fresh_dir(src)
    subprocess.run(["cp", "-a", tree("--files", str(LAT_FILES)) + "/.", src], check=True)
    dst = work("sftp", "lat-dst")
    fresh_dir(dst)

    def start():
        w = Watcher(src, "root@127.0.0.1:" + dst, "-e", ssh, "--debounce", "0")
        w.wait_cycle(0)
        return w

    got = latency_samples("sftp", src, dst, LAT_SAMPLES, random.Random(5), start, lambda h: h.stop())
    good = [x for x in got if x is not None]
    med = statistics.median(good) if good else None
    emit_table("sftp-latency", f"watch latency into a remote DEST over ssh (127.0.0.1), small files "
               f"(100..4000 B), {LAT_FILES}-file tree",
               ["arrived", "median ms", "p90 ms", "max ms", "target"],
               [[f"{len(good)}/{len(got)}", ms(med), ms(pct(good, 90)) if good else "-",
                 ms(max(good)) if good else "-",
                 target_text(None if med is None else med * 1000, "<=", 20, "ms", "median")]],
               notes=["each sample: a new file written (open, write, close) in SOURCE; timed from just before "
                      "the open until DEST holds it with the right content"])
    cleanup(work("sftp"))
