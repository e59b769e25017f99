//! A directory read with raw `getdents64` (Linux), shared by the `floor` walker
//! (`main.rs`) and the batch floors (`bin/floors.rs`): nothing is allocated per entry.

use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Calls `f(name, d_type)` for each entry of the open directory `fd` but `.` and `..`,
/// reading into `buf`; a failed read or a malformed record counts in `errors`.
pub fn each(fd: libc::c_int, buf: &mut [u8], errors: &AtomicU64, mut f: impl FnMut(&CStr, u8)) {
    loop {
        // SAFETY: getdents64 writes at most buf.len() bytes into buf.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n <= 0 {
            if n < 0 {
                errors.fetch_add(1, Relaxed);
            }
            return;
        }
        let mut off = 0usize;
        while off < n as usize {
            // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let dtype = buf[off + 18];
            let Ok(name) = CStr::from_bytes_until_nul(&buf[off + 19..off + reclen]) else {
                errors.fetch_add(1, Relaxed);
                return;
            };
            off += reclen;
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                f(name, dtype);
            }
        }
    }
}
