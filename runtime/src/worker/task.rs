//! Running tasks in a worker: the batch runner, and the [`Entry`] address by which the caller
//! names it in a request. `entry` is called on the caller's side, to take the address; the
//! functions it names run in the worker (or, for a pool of no workers, in the caller's thread).

use super::panic;
use crate::codec;
use crate::func::TaskFn;
use crate::func::Wire;
use crate::transport::channel::Sink;
use crate::wire::{batch, outcome};

/// The entry point of a batch in a worker: it decodes each task's arguments, runs the function,
/// and hands one outcome frame per task to `out`, in order.
pub(crate) type Entry = fn(batch: &[u8], out: &mut dyn Sink) -> std::io::Result<()>;

/// The [`Entry`] for `F`, to be sent (as an address) to workers forked from this process image.
pub(crate) fn entry<F: TaskFn<Args, R>, Args: Wire, R: Wire>() -> Entry {
    const { assert_no_data::<F>() };
    run_batch::<F, Args, R>
}

/// An [`Entry`]'s address, as a request carries it.
pub(crate) fn address(entry: Entry) -> u64 {
    entry as usize as u64
}

const fn assert_no_data<F>() {
    assert!(
        std::mem::size_of::<F>() == 0,
        "a pool runs functions by name: pass a function item or a closure that captures nothing, \
         not a function pointer or a capturing closure"
    );
}

fn run_batch<F: TaskFn<Args, R>, Args: Wire, R: Wire>(
    batch: &[u8],
    out: &mut dyn Sink,
) -> std::io::Result<()> {
    // SAFETY: `F` has no data (`entry` asserts it at compile time), so every value of it is the
    // same value; it is a function item or a closure (`TaskFn` is sealed, implemented only for
    // those), so it is inhabited and has no invariant; and it is `Copy`, so making one creates
    // no ownership. The caller had one.
    let f: F = unsafe { std::mem::zeroed() };
    run_each(batch, out, |args| f.call(args))
}

/// Runs `call` on each task's arguments in `batch`, writing each outcome frame to `out` as soon
/// as it is ready.
fn run_each<Args: Wire, R: Wire>(
    mut tasks: &[u8],
    out: &mut dyn Sink,
    call: impl Fn(Args) -> R,
) -> std::io::Result<()> {
    let mut buf = out.buffer();
    while let Some((args, rest)) = batch::split_args(tasks) {
        tasks = rest;
        buf.clear();
        match codec::decode::<Args>(args) {
            Ok(args) => run_one(|| call(args), &mut buf),
            Err(err) => outcome::append_decode_failed(&err.to_string(), &mut buf),
        }
        // Each outcome goes out before the next task starts: should the next one crash the
        // worker, this one is already safe with the parent.
        out.outcome(&buf)?;
    }
    out.keep(buf);
    Ok(())
}

/// Runs one task, catching a panic, and appends its outcome frame to `buf`.
pub(crate) fn run_one<R: Wire>(call: impl FnOnce() -> R, buf: &mut Vec<u8>) {
    match panic::catch(call) {
        Ok(value) => {
            outcome::append_value(&value, buf);
            // The value is dropped here, in the worker, whatever its size: in a pool worker the
            // memory is reused by the next task, so it must be freed.
            drop(value);
        }
        Err(report) => outcome::append_panic(&report, buf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the buffer it lends, as a pool worker does.
    #[derive(Default)]
    struct Keeping {
        frames: Vec<u8>,
        kept: Option<Vec<u8>>,
    }

    impl Sink for Keeping {
        fn outcome(&mut self, frame: &[u8]) -> std::io::Result<()> {
            self.frames.extend_from_slice(frame);
            Ok(())
        }

        fn buffer(&mut self) -> Vec<u8> {
            self.kept.take().unwrap_or_default()
        }

        fn keep(&mut self, buffer: Vec<u8>) {
            self.kept = Some(buffer);
        }
    }

    /// A batch after a larger one gets its own outcome and nothing of the one before, though
    /// the buffer is the same.
    #[test]
    fn outcome_buffer_kept_between_batches_starts_empty() {
        let mut sink = Keeping::default();
        for len in [1 << 20, 3, 0] {
            let mut tasks = Vec::new();
            batch::append_args(&(vec![5_u8; len],), &mut tasks).unwrap();
            sink.frames.clear();
            run_each(&tasks, &mut sink, |(value,): (Vec<u8>,)| value).unwrap();
            let mut want = Vec::new();
            run_one(|| vec![5_u8; len], &mut want);
            assert!(sink.frames == want, "outcome of a {len}-byte value");
            assert!(sink.kept.as_ref().unwrap().capacity() >= 1 << 20);
        }
    }
}
