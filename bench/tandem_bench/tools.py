"""The tools under test: a label, a command line for (SOURCE, DEST), the executable it needs."""
import os
import shutil
from dataclasses import dataclass
from typing import Callable, List

from .settings import FLOORS_BIN, RCLONE_ARGS, TANDEM, TANDEM_ARGS, TOOLS
from .util import log


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


def xcp():
    # xcp (cargo install xcp) copies SOURCE *as* a DEST that does not exist yet: the empty
    # DEST made for every run is removed first (an rmdir, inside the timing). Keeps
    # modes and mtimes; writes final names directly (no temporary + rename).
    return Tool("xcp -r", lambda s, d: ["sh", "-c", 'rmdir "$2" && exec xcp -r "$1" "$2"', "xcp", s, d], "xcp")


def fcp():
    # fcp (cargo install fcp) likewise; keeps modes but not mtimes, and writes final
    # names directly.
    return Tool("fcp", lambda s, d: ["sh", "-c", 'rmdir "$2" && exec fcp "$1" "$2"', "fcp", s, d], "fcp")


def floor(what):
    # bench/walkers floors (Linux): the system calls a run keeping tandem's promises cannot
    # do without, and nothing else (see floors.rs); not a tool anybody would use.
    label = {"copy": "floor: temp + copy_file_range + futimens + rename, 2 threads (bench/walkers floors copy)",
             "noop": "floor: both trees listed and fstatat'ed, 2 threads (bench/walkers floors noop)"}[what]
    return Tool(label, lambda s, d: [FLOORS_BIN, what, s, d], FLOORS_BIN)


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
