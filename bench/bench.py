#!/usr/bin/env python3
"""Benchmark driver for tandem against cp -a, rsync and rclone. Run it through bench/run.sh,
which installs the peers, builds tandem and passes the environment below.

  bench.py [--list] [CASE...]        default: every batch case (CASES in tandem_bench/cases/__init__.py)

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
  batchmem BATCHMEM_FILES=1000000 files of 0..BATCHMEM_MAX=64 bytes: peak RSS of a first mirror and a no-op
           run, tandem vs rsync -a --delete
  memory   MEM_FILES=1000000 files of 0..MEM_MAX=16 bytes; MEM_POLL=10s, MEM_CYCLES=2, MEM_MODES=poll,native
  rename   RENAME_SIZE=1G file and a RENAME_DIR_FILES=10000 dir, RENAME_N=5 renames each per round
  service  DEST watching on FILES files: first sync and a SERVICE_BURST=1000-file burst with and without
           it; a SIGHUP verification vs a no-op run; SERVICE_TAMPER=20 files tampered with in DEST
  pairs    PAIRS_N=50 mirrors of PAIRS_FILES=2000 files in one `tandem --config` vs one mirror of
           PAIRS_N x PAIRS_FILES files (and a lone `tandem --watch`): idle CPU over PAIRS_IDLE=60 s
           after PAIRS_SETTLE=3 s, and VmRSS
  sshfs    SSHFS_FILES=20000 tree served by bench/netfs.sh; tandem --scan-threads 4..32, rsync
  sftp     SFTP_FILES=20000 tree to a remote DEST over bench/netfs.sh's sshd (`netfs.sh serve`):
           first mirror, no-op, one change; tandem vs rsync -a --delete -e ssh, rclone sync (sftp);
           SFTP_RCLONE_FIRST=1 also times rclone's first mirror (about 1,100 s at 20,000 files)
  walkers  bench/walkers on FILES (WALK_THREADS=max(4, CPUs)) and on sshfs (WALK_NET_THREADS=16,
           WALK_SSHFS=0 skips it)

Each timed run is one child process: wall time from time.perf_counter around spawn+wait,
CPU (user+sys) and peak RSS from os.wait4's rusage (includes the children it waited for,
e.g. rsync's receiver). `sync` runs before every timed run; page-cache dropping is moot on tmpfs.

The code is the package tandem_bench/ beside this file (settings, timing, report, trees, procs,
cases; its __init__.py says which module holds what); this file is only the command line.
"""
import os
import sys

from tandem_bench.cases import CASES
from tandem_bench.settings import BENCH_DIR
from tandem_bench.report import emit
from tandem_bench.util import log


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
