//! Children that were killed but not yet reaped, process-wide, and their reaping away from the
//! thread that let them go. Caller side.
//!
//! A [`Child`](super::child::Child) dropped on an async runtime's thread must not wait there
//! for the kernel to tear the process down (tokio's own process reaper queues its orphans the
//! same way, `tokio/src/process/unix/orphan.rs`). It is killed and queued here instead, and a
//! task on the runtime's blocking threads reaps the queue; so does every later
//! [`launch`](super::launch::launch), without waiting, in case that task never ran (the runtime
//! was shutting down). A killed process ends within milliseconds, so no zombie is left for
//! longer than that while the runtime lives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::sys::{self, Pid};

/// Children of this process, killed and not yet reaped: each pid names that child and no other
/// process until it is reaped here.
static ORPHANS: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// How many orphans are queued: read without the lock, so that a launch with none pays nothing.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Queues a killed child of this process for reaping.
pub(super) fn adopt(pid: Pid) {
    let mut orphans = ORPHANS.lock().unwrap_or_else(PoisonError::into_inner);
    orphans.push(pid);
    QUEUED.store(orphans.len(), Ordering::Relaxed);
}

/// Reaps the orphans that have ended, without waiting for the others.
pub(super) fn reap_ended() {
    if QUEUED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut orphans = ORPHANS.lock().unwrap_or_else(PoisonError::into_inner);
    // Reaped (`Some`), or not ours to reap any more (an error): either way, done with.
    orphans.retain(|&pid| matches!(sys::try_wait(pid), Ok(None)));
    QUEUED.store(orphans.len(), Ordering::Relaxed);
}

/// Reaps every orphan, waiting for each to end; for a blocking thread. The lock is not held
/// while waiting, so queuing never waits for a reap.
#[cfg(feature = "tokio")]
pub(super) fn reap_all() {
    loop {
        let orphan = {
            let mut orphans = ORPHANS.lock().unwrap_or_else(PoisonError::into_inner);
            let orphan = orphans.pop();
            QUEUED.store(orphans.len(), Ordering::Relaxed);
            orphan
        };
        let Some(pid) = orphan else {
            return;
        };
        let _ = sys::wait(pid);
    }
}
