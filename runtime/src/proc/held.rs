//! The caller's descriptors of every live worker, process-wide: each pool's and each one-off
//! handle's pipes, pidfds and status sockets. Every fork of the caller closes them all in the
//! child ([`launch`](super::launch::launch)), so that no worker holds a descriptor of another,
//! whichever pool or handle it belongs to. Caller side.
//!
//! The list is written under its lock by `launch` (which holds it across the fork, so that no
//! worker's descriptors are made or listed half-way through another's fork) and by
//! [`Child`](super::child::Child)'s drop, before the descriptors close. A number still listed
//! after its descriptor closed (one a holder closed early) is harmless: the child closes a
//! listed number only if it still names the same file ([`sys::FdId`]).
//!
//! Once the fork server runs, the caller forks no more: every worker comes from the server,
//! which holds none of the caller's descriptors. Nothing is listed then (an entry costs a lock
//! and an `fstat` a descriptor, on the path of every one-off worker), and what was listed
//! before stays harmlessly until its worker ends.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::sys::{self, FdId};

/// The descriptors of each live worker, by the key its [`Child`](super::child::Child) holds.
static HELD: Mutex<Vec<(u64, FdId)>> = Mutex::new(Vec::new());

/// Keys for [`Held::add`], never reused (and never [`NONE`]).
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The list, locked.
pub(super) struct Held(MutexGuard<'static, Vec<(u64, FdId)>>);

impl Held {
    pub(super) fn lock() -> Held {
        Held(HELD.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Everything listed, for the child of a fork to close.
    pub(super) fn all(&self) -> Vec<FdId> {
        self.0.iter().map(|(_, id)| *id).collect()
    }

    /// Lists `fds` (those that are open) under a new key, which [`remove`] takes.
    pub(super) fn add(&mut self, fds: &[RawFd]) -> u64 {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        self.0.extend(
            fds.iter()
                .filter_map(|&fd| sys::identify(fd))
                .map(|id| (key, id)),
        );
        key
    }
}

impl Held {
    /// In the child of the fork that this lock was held across: everything listed was closed
    /// by the fork, so the list starts empty, and the lock is let go (the child's copy of it,
    /// held by the child's one thread, the copy of the one that forked), so that the worker
    /// can start workers and pools of its own.
    pub(super) fn release_in_child(mut self) {
        self.0.clear();
    }
}

/// The key of nothing listed: of a worker of the fork server, or one not listed yet.
pub(super) const NONE: u64 = 0;

/// Takes the descriptors listed under `key` off the list, before they close.
pub(super) fn remove(key: u64) {
    if key != NONE {
        Held::lock().0.retain(|(listed, _)| *listed != key);
    }
}

/// Descriptors of the caller's own that no worker may inherit either (a pool's bell, the epoll
/// set it is awaited through), listed for as long as this value lives. Drop it before they
/// close: declare it before them in the struct that owns both.
#[derive(Debug)]
pub(crate) struct Kept(u64);

impl Kept {
    pub(crate) fn new(fds: &[RawFd]) -> Kept {
        if crate::server::is_running() {
            return Kept(NONE);
        }
        Kept(Held::lock().add(fds))
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        remove(self.0);
    }
}
