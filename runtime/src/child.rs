//! What runs in the worker process, from the fork to `_exit`.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::sys::Pid;

use crate::codec;
use crate::error::{PanicLocation, PanicReport};
use crate::frame::{self, Tag};
use crate::sys;
use crate::{Wire, Worker};

/// The exit code of a worker that could not deliver its outcome (the pipe broke, or our own
/// code panicked): the parent then reports the missing or partial frame.
const EXIT_UNDELIVERED: i32 = 70;

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

/// The body of a freshly forked worker: runs `W` and writes its outcome to `pipe`. Never returns.
pub(crate) fn run<W: Worker>(args: W::Args, pipe: OwnedFd, parent: Pid) -> ! {
    // Nothing may unwind out of here into the code that called `fork`, which belongs to the
    // parent: a panic in our own code ends the process with a code the parent reports.
    let delivered = panic::catch_unwind(AssertUnwindSafe(|| {
        if !sys::die_with_parent(parent) {
            return false;
        }
        let frame = outcome_frame::<W>(args);
        std::fs::File::from(pipe).write_all(&frame).is_ok()
    }));
    sys::exit_now(match delivered {
        Ok(true) => 0,
        _ => EXIT_UNDELIVERED,
    })
}

fn outcome_frame<W: Worker>(args: W::Args) -> Vec<u8> {
    let mut buf = Vec::new();
    append_outcome(|| W::call(args), &mut buf);
    buf
}

/// Calls `call`, catching a panic, and appends a frame with its outcome to `buf`: the encoded
/// value, the panic's report, or why the value could not be encoded.
pub(crate) fn append_outcome<R: Wire>(call: impl FnOnce() -> R, buf: &mut Vec<u8>) {
    let capturing = CAPTURING.replace(true);
    let outcome = panic::catch_unwind(AssertUnwindSafe(call));
    CAPTURING.set(capturing);
    let start = buf.len();
    match outcome {
        Ok(value) => {
            let header = frame::begin(buf, Tag::Value);
            let encoded = codec::encode_into(&value, buf);
            // The value is dropped here, in the worker, whatever its size: in a pool worker the
            // memory is reused by the next task, so it must be freed.
            drop(value);
            if let Err(err) = encoded {
                buf.truncate(start);
                let header = frame::begin(buf, Tag::EncodeFailed);
                buf.extend_from_slice(err.to_string().as_bytes());
                frame::finish(buf, header);
                return;
            }
            frame::finish(buf, header);
        }
        Err(payload) => {
            let report = LAST_PANIC.take().unwrap_or_else(|| PanicReport {
                // The hook was replaced after ours was installed: the payload still has the
                // message, but the location is lost.
                message: payload_message(&*payload),
                location: None,
            });
            // A payload's destructor may panic in turn: leak it rather than risk that.
            std::mem::forget(payload);
            let header = frame::begin(buf, Tag::Panic);
            if codec::encode_into(&report, buf).is_err() {
                // A `String` and three integers always encode; should that ever change, the
                // parent reads the missing frame as a failure.
                buf.truncate(start);
                return;
            }
            frame::finish(buf, header);
        }
    }
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
