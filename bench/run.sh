#!/usr/bin/env bash
# Benchmark tandem against cp -a, xcp, fcp, rsync and rclone on tmpfs.
#
#   bench/run.sh [CASE...]         batch cases: first noop onechange large (the default)
#                                  watch/other cases (named only): poll latency batchmem memory rename service pairs sshfs sftp walkers s3 s3clients
#   bench/run.sh --list            list the cases
#   FILES=2000 ROUNDS=2 bench/run.sh first noop      quick smoke run
#
# Environment: ROUNDS (5), FILES (100000), LARGE_COUNT (4), LARGE_SIZE (1G),
# BENCH_DIR (/dev/shm/tandem-bench), TANDEM, TANDEM_ARGS, RCLONE_ARGS, TOOLS, VERIFY (1),
# KEEP_DST (0), RSS (1), SKIP_BUILD (0), NO_INSTALL (0). See bench/bench.py for details.
# Named cases also read POLL_CYCLES, POLL_WRITES, LAT_FILES, LAT_SAMPLES, BATCHMEM_FILES, BATCHMEM_MAX, MEM_FILES, MEM_MAX, MEM_POLL,
# MEM_CYCLES, MEM_MODES, RENAME_N, RENAME_SIZE, RENAME_DIR_FILES, SERVICE_BURST, SERVICE_TAMPER, PAIRS_N, PAIRS_FILES, PAIRS_IDLE, PAIRS_SETTLE, SSHFS_FILES, WALK_THREADS,
# WALK_NET_THREADS, WALK_SSHFS. latency wants lsyncd, sshfs/walkers want sshfs + openssh-server
# (bench/netfs.sh installs those), walkers builds bench/walkers with cargo, s3clients bench/s3clients.
# Tables print to stdout and go to bench/results/<case>-<date>.md (ignored by git).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

# Peers: rsync is required; rclone (its column is skipped without it), hyperfine (for ad-hoc
# comparisons) and GNU time (peak-RSS column) are optional.
missing=()
for tool in rsync rclone hyperfine time; do
  [[ $tool == time ]] && { [[ -x /usr/bin/time ]] || missing+=(time); continue; }
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})) && [[ ${NO_INSTALL:-0} != 1 ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (apt-get)" >&2
  apt-get update -qq || echo "apt-get update failed; trying to install anyway" >&2
  for pkg in "${missing[@]}"; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null ||
      echo "could not install $pkg" >&2
  done
fi
# xcp and fcp (first-mirror peers) install with cargo; their columns are skipped without them.
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
for tool in xcp fcp; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ${NO_INSTALL:-0} != 1 ]] && command -v cargo >/dev/null; then
    echo "installing $tool (cargo install)" >&2
    cargo install --quiet "$tool" >/dev/null 2>&1 || echo "could not install $tool: its column is skipped" >&2
  fi
done
command -v rsync >/dev/null || { echo "rsync is required" >&2; exit 1; }
command -v rclone >/dev/null || echo "rclone not available: its column is skipped" >&2

if [[ ${SKIP_BUILD:-0} != 1 && -z ${TANDEM:-} ]]; then
  (cd "$REPO" && cargo build --release --quiet)
fi

MKTREE=$HERE/mktree.py
export MKTREE

exec python3 "$HERE/bench.py" "$@"
