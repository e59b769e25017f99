"""tandem's benchmark library; bench/bench.py is its command line.

  settings   the environment variables (ROUNDS, FILES, ...) and the paths everything uses
  util       logging, sizes, small file-system helpers (rm -rf, fresh dirs)
  tools      the tools under test (tandem, cp -a, rsync, rclone) and the TOOLS filter
  timing     one timed child (wall, CPU, peak RSS) and the round-robin runner
  report     tables of medians and ratios, printed and written to bench/results/
  trees      mktree trees (made once, reused), work dirs, DEST-vs-SOURCE verification
  procs      long-lived processes: tandem --watch, lsyncd, the sshfs mount; /proc readings
  cases      the cases, one module per kind, registered in cases/__init__.py (CASES)
"""
