//! Running tasks in a worker: the batch runner, and the [`Entry`] by which the caller names it
//! in a request. `entry` is called on the caller's side, to take the address; the functions it
//! names run in the worker (or, for a pool of no workers, in the caller's thread).

use super::panic;
use crate::codec::Codec;
use crate::func::{self, InitResult, TaskFn, Wire};
use crate::transport::channel::Sink;
use crate::wire::{batch, outcome};

/// The function that runs a batch in a worker: it decodes each task's arguments (which came in
/// `codec`, as the request says), runs the function, and hands one outcome frame per task to
/// `out`, in order.
pub(crate) type RunBatch =
    fn(codec: Codec, batch: &[u8], out: &mut dyn Sink) -> std::io::Result<()>;

/// A batch's entry point, as the caller holds it: the function that runs it in a worker, and
/// the codec of its tasks' arguments and results.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    run: RunBatch,
    codec: Codec,
}

impl Entry {
    /// The codec of the tasks' arguments and results, the function's.
    pub(crate) fn codec(self) -> Codec {
        self.codec
    }

    /// Runs a batch here, as a worker would (for a pool of no workers).
    pub(crate) fn run(self, batch: &[u8], out: &mut dyn Sink) -> std::io::Result<()> {
        (self.run)(self.codec, batch, out)
    }
}

/// The [`Entry`] for `F`, to be sent (as an address) to workers forked from this process image.
pub(crate) fn entry<F: TaskFn<Args, R>, Args: Wire, R: Wire>() -> Entry {
    let () = func::ByName::<F>::OK;
    Entry {
        run: run_batch::<F, Args, R>,
        codec: func::codec::<F, Args, R>(),
    }
}

/// The [`Entry`] of a pool's initializer `F`, which a worker runs as its first batch (of one
/// task). Its outcome is a value of `Option<String>` in the default codec, `None` when the
/// initializer succeeded and otherwise why it failed, or a panic; a worker whose initializer
/// failed then ends, so that it runs no task without it.
pub(crate) fn init_entry<F: TaskFn<Args, R>, Args: Wire, R: InitResult>() -> Entry {
    let () = func::ByName::<F>::OK;
    Entry {
        run: run_init::<F, Args, R>,
        codec: func::codec::<F, Args, R>(),
    }
}

/// Runs an initializer's batch (see [`init_entry`]); fails, after sending its outcome, when
/// the initializer did, so that the worker's serve loop ends.
fn run_init<F: TaskFn<Args, R>, Args: Wire, R: InitResult>(
    _: Codec,
    batch: &[u8],
    out: &mut dyn Sink,
) -> std::io::Result<()> {
    let f = F::conjure();
    let mut buf = out.buffer();
    buf.clear();
    let mut succeeded = false;
    let ours = func::codec::<F, Args, R>();
    match batch::split_args(batch).map(|(args, _)| ours.decode::<Args>(args)) {
        Some(Ok(args)) => run_one(
            Codec::DEFAULT,
            || {
                let failure = f.call(args).failure();
                succeeded = failure.is_none();
                failure
            },
            &mut buf,
        ),
        Some(Err(err)) => outcome::append_decode_failed(&err.to_string(), &mut buf),
        None => outcome::append_decode_failed("a bad request frame: no arguments", &mut buf),
    }
    out.outcome(&buf)?;
    out.keep(buf);
    if succeeded {
        Ok(())
    } else {
        Err(std::io::Error::other("the initializer failed"))
    }
}

/// An [`Entry`]'s address, as a request carries it: a worker calls it as a [`RunBatch`].
pub(crate) fn address(entry: Entry) -> u64 {
    entry.run as usize as u64
}

fn run_batch<F: TaskFn<Args, R>, Args: Wire, R: Wire>(
    codec: Codec,
    batch: &[u8],
    out: &mut dyn Sink,
) -> std::io::Result<()> {
    let f = F::conjure();
    let ours = func::codec::<F, Args, R>();
    let said = (codec != ours).then(|| {
        // Our own caller wrote the request, so this is a bug rather than a user's mistake; each
        // task still gets its outcome.
        format!(
            "a bad request frame: the arguments are in {}, but the function's codec is {}",
            codec.name(),
            ours.name()
        )
    });
    run_each(ours, said.as_deref(), batch, out, |args| f.call(args))
}

/// Runs `call` on each task's arguments in `batch`, decoded in `codec`, writing each outcome
/// frame to `out` as soon as it is ready. With `refused`, every task fails with that message
/// instead.
fn run_each<Args: Wire, R: Wire>(
    codec: Codec,
    refused: Option<&str>,
    mut tasks: &[u8],
    out: &mut dyn Sink,
    call: impl Fn(Args) -> R,
) -> std::io::Result<()> {
    let mut buf = out.buffer();
    while let Some((args, rest)) = batch::split_args(tasks) {
        tasks = rest;
        buf.clear();
        let decoded = match refused {
            Some(message) => Err(message.to_owned()),
            None => codec.decode::<Args>(args).map_err(|err| err.to_string()),
        };
        match decoded {
            Ok(args) => run_one(codec, || call(args), &mut buf),
            Err(message) => outcome::append_decode_failed(&message, &mut buf),
        }
        // Each outcome goes out before the next task starts: should the next one crash the
        // worker, this one is already safe with the parent.
        out.outcome(&buf)?;
    }
    out.keep(buf);
    Ok(())
}

/// Runs one task, catching a panic, and appends its outcome frame to `buf`, the value encoded
/// in `codec` (a panic report in the default codec, always).
pub(crate) fn run_one<R: Wire>(codec: Codec, call: impl FnOnce() -> R, buf: &mut Vec<u8>) {
    match panic::catch(call) {
        Ok(value) => {
            outcome::append_value(codec, &value, buf);
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

    fn double(x: u64) -> u64 {
        x * 2
    }

    /// Runs `f`'s batch as a worker does, with the request's codec `codec`.
    fn run_as_worker<F: TaskFn<(u64,), u64>>(_: F, codec: Codec, tasks: &[u8]) -> Vec<u8> {
        let mut sink = Keeping::default();
        run_batch::<F, (u64,), u64>(codec, tasks, &mut sink).unwrap();
        sink.frames
    }

    #[test]
    fn a_batch_decodes_and_encodes_in_the_functions_codec() {
        let mut tasks = Vec::new();
        batch::append_args(Codec::DEFAULT, &(21_u64,), &mut tasks).unwrap();
        let frames = run_as_worker(double, Codec::DEFAULT, &tasks);
        let mut want = Vec::new();
        outcome::append_value(Codec::DEFAULT, &42_u64, &mut want);
        assert_eq!(frames, want);
    }

    /// A request in another codec than the function's is refused, task by task: each still
    /// gets its outcome.
    #[cfg(feature = "bincode")]
    #[test]
    fn a_request_in_another_codec_fails_each_task() {
        let mut tasks = Vec::new();
        for x in [1_u64, 2] {
            batch::append_args(Codec::Bincode, &(x,), &mut tasks).unwrap();
        }
        let frames = run_as_worker(double, Codec::Bincode, &tasks);
        let mut want = Vec::new();
        for _ in 0..2 {
            let message = "a bad request frame: the arguments are in bincode, but the \
                           function's codec is msgpack";
            outcome::append_decode_failed(message, &mut want);
        }
        assert_eq!(frames, want);
    }

    /// A batch after a larger one gets its own outcome and nothing of the one before, though
    /// the buffer is the same.
    #[test]
    fn outcome_buffer_kept_between_batches_starts_empty() {
        let mut sink = Keeping::default();
        for len in [1 << 20, 3, 0] {
            let mut tasks = Vec::new();
            batch::append_args(Codec::DEFAULT, &(vec![5_u8; len],), &mut tasks).unwrap();
            sink.frames.clear();
            run_each(
                Codec::DEFAULT,
                None,
                &tasks,
                &mut sink,
                |(value,): (Vec<u8>,)| value,
            )
            .unwrap();
            let mut want = Vec::new();
            run_one(Codec::DEFAULT, || vec![5_u8; len], &mut want);
            assert!(sink.frames == want, "outcome of a {len}-byte value");
            assert!(sink.kept.as_ref().unwrap().capacity() >= 1 << 20);
        }
    }
}
