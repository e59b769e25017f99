"""Every environment variable the benchmarks read, and the paths they use (see bench/bench.py's
docstring for what each variable means). Read once, at import."""
import os
import shlex

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bench/
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
NETFS = os.path.join(HERE, "netfs.sh")
WALKERS_DIR = os.path.join(HERE, "walkers")
WALKERS_BIN = os.path.join(WALKERS_DIR, "target", "release", "walkers")
# The floors of the batch cases (bench/walkers/src/bin/floors.rs), built with the walkers.
FLOORS_BIN = os.path.join(WALKERS_DIR, "target", "release", "floors")
RSS = env("RSS", "1") != "0"
SKIP_BUILD = env("SKIP_BUILD", "0") == "1"

# Named cases
POLL_CYCLES = int(env("POLL_CYCLES", "10"))
POLL_WRITES = int(env("POLL_WRITES", "10"))
LAT_FILES = int(env("LAT_FILES", "1000"))
LAT_SAMPLES = int(env("LAT_SAMPLES", "100"))
MEM_FILES = int(env("MEM_FILES", "1000000"))
BATCHMEM_FILES = int(env("BATCHMEM_FILES", "1000000"))
BATCHMEM_MAX = env("BATCHMEM_MAX", "64")
MEM_MAX = env("MEM_MAX", "16")
MEM_POLL = env("MEM_POLL", "10s")
MEM_CYCLES = int(env("MEM_CYCLES", "2"))
MEM_MODES = [m for m in env("MEM_MODES", "poll,native").split(",") if m]
RENAME_N = int(env("RENAME_N", "5"))
RENAME_SIZE = env("RENAME_SIZE", "1G")
RENAME_DIR_FILES = int(env("RENAME_DIR_FILES", "10000"))
SERVICE_BURST = int(env("SERVICE_BURST", "1000"))
SERVICE_TAMPER = int(env("SERVICE_TAMPER", "20"))
SSHFS_FILES = int(env("SSHFS_FILES", "20000"))
SFTP_FILES = int(env("SFTP_FILES", "20000"))
S3_FILES = int(env("S3_FILES", "20000"))
SFTP_RCLONE_FIRST = env("SFTP_RCLONE_FIRST", "0") == "1"
WALK_THREADS = int(env("WALK_THREADS", str(max(4, os.cpu_count() or 1))))
WALK_NET_THREADS = int(env("WALK_NET_THREADS", "16"))
WALK_SSHFS = env("WALK_SSHFS", "1") == "1"
