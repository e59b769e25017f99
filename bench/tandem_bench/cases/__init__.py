"""The cases: a function returning a Report (or printing its own tables and returning None),
registered in CASES. bench.py runs them by name; batch=False keeps a case out of the default run."""
from dataclasses import dataclass
from typing import Callable, Dict

from ..report import Report
from .batchmem import case_batchmem
from .batch import case_excluded, case_first, case_large, case_noop, case_onechange
from .latency import case_latency
from .memory import case_memory
from .pairs import case_pairs
from .poll import case_poll
from .rename import case_rename
from .service import case_service
from .s3 import case_s3, case_s3clients
from .sftp import case_sftp
from .sshfs import case_sshfs
from .walkers import case_walkers


@dataclass
class Case:
    fn: Callable[[], Report]
    help: str
    batch: bool = True  # part of the default run


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
    "batchmem": Case(case_batchmem, "peak RSS of a first mirror and a no-op run of BATCHMEM_FILES (1,000,000) "
                     "files of 0..64 B: tandem vs rsync -a --delete", batch=False),
    "memory": Case(case_memory, "RSS per tracked entry while watching MEM_FILES (1,000,000) files", batch=False),
    "pairs": Case(case_pairs, "PAIRS_N (50) mirrors of PAIRS_FILES (2,000) files in one --config service vs one "
                  "mirror of the same total: idle CPU and RSS", batch=False),
    "rename": Case(case_rename, "a 1 GiB file and a 10,000-file dir renamed while watching (native, poll)",
                   batch=False),
    "service": Case(case_service, "DEST watching: first sync and a burst with and without it; a full "
                    "verification vs a no-op run; repair latency of a file tampered with in DEST", batch=False),
    "sshfs": Case(case_sshfs, "no-op run with SOURCE on sshfs: tandem (--scan-threads 4..32) vs rsync; "
                  "one poll cycle", batch=False),
    "sftp": Case(case_sftp, "remote DEST over ssh on loopback (SFTP_FILES, 20,000): first mirror, no-op, one "
                 "change: tandem vs rsync -a --delete -e ssh and rclone sync (sftp)", batch=False),
    "s3": Case(case_s3, "an S3 bucket as DEST (SeaweedFS on loopback, S3_FILES 20,000): first mirror and "
               "no-op: tandem vs rclone sync --transfers 16 --checkers 16", batch=False),
    "s3clients": Case(case_s3clients, "S3 clients for the first mirror's PUTs (bench/s3clients: aws-sdk-s3, "
                      "object_store) beside tandem and rclone, SeaweedFS on loopback", batch=False),
    "walkers": Case(case_walkers, "directory walkers (bench/walkers: rayon, jwalk, ignore, dua-core) on "
                    "tmpfs and sshfs", batch=False),
}
