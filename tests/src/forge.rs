//! A worker's own code writing to its result channel, as a hostile or broken task would: the
//! frame header written out again by hand, and the worker's result pipe found among its
//! descriptors.
//!
//! Only in a process where nothing but the runtime makes pipes, and where no sibling is forked
//! at the same moment by a thread of another test: the worker looks for its one blocking,
//! write-only pipe that closes on `exec`.

use std::fs::File;
use std::io::Write;

/// The tag of a value's outcome frame.
pub const VALUE: u8 = 0;

/// The frame header, as `runtime/src/wire/frame.rs` lays it out: magic, tag, codec, check,
/// then the payload's length. Written out again here, as a worker forging frames would.
#[must_use]
pub fn header(tag: u8, len: u64) -> [u8; 12] {
    let said = len ^ (u64::from(tag) << 56) ^ 0xa7;
    let check = (said.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8;
    let mut header = [0xa7, tag, 0, check, 0, 0, 0, 0, 0, 0, 0, 0];
    header[4..].copy_from_slice(&len.to_le_bytes());
    header
}

/// The write end of this worker's result pipe: its one blocking, write-only pipe that closes
/// on `exec` (the caller's own pipes, such as a test harness's, do not).
///
/// # Panics
///
/// Panics unless exactly one descriptor looks like it.
#[must_use]
pub fn result_pipe() -> File {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let fd: i32 = entry
            .unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .map_or(0, |flags| u32::from_str_radix(flags.trim(), 8).unwrap());
        let (write_only, cloexec, nonblocking) = (
            flags & 3 == 1,
            flags & 0o2_000_000 != 0,
            flags & 0o4000 != 0,
        );
        if fd > 2
            && link.to_string_lossy().starts_with("pipe:")
            && write_only
            && cloexec
            && !nonblocking
        {
            found.push(fd);
        }
    }
    assert_eq!(found.len(), 1, "result pipes: {found:?}");
    // SAFETY: the descriptor is this worker's result pipe, which the worker's own code writes
    // to on purpose; the worker exits or returns right after, and the caller leaks the `File`
    // (see `write_raw`) so that the runtime's own use of it goes on.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(found[0]) }
}

/// Writes `bytes` to this worker's result pipe, behind the runtime's back.
///
/// # Panics
///
/// Panics if the pipe cannot be found or written.
pub fn write_raw(bytes: &[u8]) {
    let mut pipe = result_pipe();
    pipe.write_all(bytes).unwrap();
    std::mem::forget(pipe);
}

/// `len` pseudo-random bytes, the same for the same `seed`.
#[must_use]
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}
