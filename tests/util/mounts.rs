//! Mounts for tests: a bindfs (FUSE) mount stands in for a network share.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub fn have_command(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// A bindfs mount, unmounted on drop.
pub struct BindMount {
    mnt: PathBuf,
}

impl BindMount {
    pub fn mount(lower: &Path, mnt: &Path) -> BindMount {
        BindMount::mount_with(lower, mnt, &[])
    }

    /// A bindfs mount with bindfs options (`--xattr-none`: no extended attributes,
    /// every xattr call fails with ENOTSUP).
    pub fn mount_with(lower: &Path, mnt: &Path, options: &[&str]) -> BindMount {
        let out = Command::new("bindfs").args(options).arg(lower).arg(mnt).output().expect("run bindfs");
        assert!(
            out.status.success(),
            "bindfs {} {} failed ({}): {}",
            lower.display(),
            mnt.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        BindMount { mnt: mnt.to_path_buf() }
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let attempts: [(&str, &[&str]); 4] =
            [("fusermount", &["-u"]), ("fusermount3", &["-u"]), ("umount", &[]), ("fusermount", &["-uz"])];
        for _ in 0..20 {
            for (cmd, args) in attempts {
                let ok = Command::new(cmd)
                    .args(args)
                    .arg(&self.mnt)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if ok {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("warning: could not unmount {}", self.mnt.display());
    }
}

pub fn fuse_unavailable() -> Option<&'static str> {
    if !have_command("bindfs") {
        Some("bindfs is not installed (apt-get install bindfs)")
    } else if !Path::new("/dev/fuse").exists() {
        Some("/dev/fuse is missing")
    } else if !have_command("fusermount") && !have_command("fusermount3") && !have_command("umount") {
        Some("no fusermount/umount to unmount with")
    } else {
        None
    }
}
