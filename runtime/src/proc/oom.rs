//! Telling an OOM kill from another `SIGKILL`: the kernel counts its OOM kills
//! ([`OomKills`]), and a worker that `SIGKILL` ended, when nothing of ours sent it, was the
//! OOM killer's victim if the count has risen since it was last looked at. Caller side.
//!
//! The count is taken once, before the first worker starts, and read again only when a worker
//! dies of a `SIGKILL` we did not send: a normal crash costs nothing more. Each rise of the count
//! explains one such death, so that two workers killed for one shortage are both reported, and
//! a later `kill -9` from outside is not. The kernel counts every OOM kill in the cgroup (or the
//! system, where there is no memory cgroup to read), not only those of our workers: a process
//! of the program's own that the OOM killer took leaves a rise that the next unexplained
//! `SIGKILL` of a worker takes for its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::sys::OomKills;

/// Where the count is read, found on the first start of a worker; `None` if nowhere.
static COUNTER: OnceLock<Option<OomKills>> = OnceLock::new();

/// The count of OOM kills already explained (or seen before the first worker started).
static EXPLAINED: AtomicU64 = AtomicU64::new(0);

/// Takes the count before the first worker starts; at once after the first time.
pub(super) fn watch() {
    COUNTER.get_or_init(|| {
        let counter = OomKills::find()?;
        EXPLAINED.store(counter.read()?, Ordering::Relaxed);
        Some(counter)
    });
}

/// Whether the OOM killer ended a worker that a `SIGKILL` of nobody we know of ended: the count
/// has risen past what earlier deaths explained (this death then explains one more).
pub(super) fn killed_one() -> bool {
    let Some(now) = COUNTER
        .get()
        .and_then(Option::as_ref)
        .and_then(OomKills::read)
    else {
        return false;
    };
    EXPLAINED
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |explained| {
            (now > explained).then_some(explained + 1)
        })
        .is_ok()
}
