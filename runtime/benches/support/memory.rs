//! Memory figures from `/proc`: a process's private memory, and this process's peak RSS.

use std::fs;
use std::io;
use std::time::{Duration, Instant};

/// A process's unique set size (private memory: `Private_Clean + Private_Dirty` from
/// `smaps_rollup`), in KiB.
pub(crate) fn uss_kib(pid: u32) -> io::Result<u64> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok(field_kib(&rollup, "Private_Clean:")? + field_kib(&rollup, "Private_Dirty:")?)
}

/// A field of `/proc/self/status` in KiB, such as `VmHWM:` (peak RSS) or `VmRSS:`.
pub(crate) fn own_status_kib(field: &str) -> io::Result<u64> {
    field_kib(&fs::read_to_string("/proc/self/status")?, field)
}

/// Resets this process's peak RSS (`VmHWM`) to its current RSS (Linux 4.0 or later); false
/// where that is not allowed, in which case `VmHWM` stays the peak of the whole process.
pub(crate) fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Waits until a process sleeps (state `S`: a worker blocked on its pipe, idle), for at most a
/// second; false if it did not.
pub(crate) fn wait_until_idle(pid: u32) -> io::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The state follows the command name, which is in parentheses and may hold spaces.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if state == Some('S') {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(false)
}

/// The CPU time, user and system, that a process (`/proc/PID/stat`) or thread
/// (`/proc/thread-self/stat`) has used, in milliseconds: `/proc` counts it in ticks of
/// `USER_HZ`, which Linux fixes at 100 a second for every architecture.
pub(crate) fn cpu_ms(stat_path: &str) -> io::Result<u64> {
    let stat = fs::read_to_string(stat_path)?;
    // Fields after the command name (in parentheses, maybe with spaces): state is the first,
    // utime the 12th and stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |at: usize| fields.get(at).and_then(|field| field.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) * 10),
        _ => Err(io::Error::other(format!("no CPU times in {stat_path}"))),
    }
}

fn field_kib(text: &str, field: &str) -> io::Result<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no `{field}` in /proc")))
}
