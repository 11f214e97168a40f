//! A worker's panics: the hook that records where one happened, and catching it around a task so
//! that it becomes the task's outcome instead of unwinding into code that belongs to the parent.
//!
//! The hook is installed in the parent, before the first fork (see [`install_panic_hook`]);
//! everything else here runs in the worker.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::error::{PanicLocation, PanicReport};

thread_local! {
    /// Set only in a worker process, on its one thread, while it runs the user's function.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    /// The last panic the hook saw while capturing.
    static LAST_PANIC: RefCell<Option<PanicReport>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that records the message and location of panics in
/// workers and hands every other panic to the hook that was there before.
///
/// It runs in the parent, before the first fork: setting a hook takes a process-wide lock, which
/// a forked child must not take (another thread of the parent may have held it).
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.get() {
                let report = PanicReport {
                    message: payload_message(info.payload()),
                    location: info.location().map(PanicLocation::from_std),
                };
                LAST_PANIC.set(Some(report));
            } else {
                previous(info);
            }
        }));
    });
}

/// Calls `call`, catching a panic: its value, or the panic's report.
pub(crate) fn catch<R>(call: impl FnOnce() -> R) -> Result<R, PanicReport> {
    let capturing = CAPTURING.replace(true);
    let outcome = panic::catch_unwind(AssertUnwindSafe(call));
    CAPTURING.set(capturing);
    outcome.map_err(|payload| {
        let report = LAST_PANIC.take().unwrap_or_else(|| PanicReport {
            // The hook was replaced after ours was installed: the payload still has the
            // message, but the location is lost.
            message: payload_message(&*payload),
            location: None,
        });
        // A payload's destructor may panic in turn: leak it rather than risk that.
        std::mem::forget(payload);
        report
    })
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
