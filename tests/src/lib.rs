//! Helpers shared by the behaviour tests in `tests/tests/`.
//!
//! Counting open files and child processes is only meaningful while nothing else in the process
//! opens files or forks, so the tests that count run in test binaries of their own, one `#[test]`
//! each.

use std::fs;

/// The file descriptors this process has open, by number.
///
/// # Panics
///
/// Panics if `/proc/self/fd` cannot be read.
#[must_use]
pub fn open_fds() -> Vec<u32> {
    let mut fds: Vec<u32> = fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    // The list includes the descriptor `read_dir` held while listing, so two calls compare equal
    // exactly when nothing else was opened or closed between them.
    fds
}

/// The processes whose parent is this process, zombies included, by pid.
///
/// # Panics
///
/// Panics if `/proc` cannot be read.
#[must_use]
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut children: Vec<u32> = fs::read_dir("/proc")
        .expect("/proc is readable")
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name, in parentheses, may itself hold spaces and parentheses: the
            // fields after the last `)` are `state ppid …`.
            let parent: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (parent == me).then_some(pid)
        })
        .collect();
    children.sort_unstable();
    children
}
