//! Functions that a pool can run: [`TaskFn`], and the entry point a pool worker calls for a batch.

use crate::child;
use crate::codec;
use crate::frame::{self, Tag};
use crate::{Wire, Worker};

/// A function that a [`Pool`](crate::Pool) can run in its worker processes, taking the tuple
/// `Args` and returning `R`.
///
/// Implemented for functions of up to 12 arguments, named by their item (`square`, not a
/// `fn(u64) -> u64` pointer), and for closures that capture nothing: types with no data, so that
/// a worker forked before the call can run them. Arguments and the return value must be
/// [`Wire`]. A `#[lambda_parallel]` function is checked for all of this where it is declared.
///
/// ```
/// # fn main() -> Result<(), lambda_parallel::Error> {
/// let pool = lambda_parallel::Pool::new(2)?;
/// fn add(a: u64, b: u64) -> u64 { a + b }
/// assert_eq!(pool.starmap(add, [(1, 2), (3, 4)])?, [3, 7]);
/// assert_eq!(pool.map(|x: u64| x * 10, [1, 2])?, [10, 20]);
/// # Ok(())
/// # }
/// ```
pub trait TaskFn<Args, R>: Copy + Send + Sync + 'static {
    /// Calls the function.
    fn call(self, args: Args) -> R;
}

macro_rules! impl_task_fn {
    ($($arg:ident)*) => {
        impl<F, R, $($arg,)*> TaskFn<($($arg,)*), R> for F
        where
            F: Fn($($arg),*) -> R + Copy + Send + Sync + 'static,
        {
            #[allow(non_snake_case)] // the arguments are named after their types
            fn call(self, ($($arg,)*): ($($arg,)*)) -> R {
                self($($arg),*)
            }
        }
    };
}

impl_task_fn!();
impl_task_fn!(A);
impl_task_fn!(A B);
impl_task_fn!(A B C);
impl_task_fn!(A B C D);
impl_task_fn!(A B C D E);
impl_task_fn!(A B C D E G);
impl_task_fn!(A B C D E G H);
impl_task_fn!(A B C D E G H I);
impl_task_fn!(A B C D E G H I J);
impl_task_fn!(A B C D E G H I J K);
impl_task_fn!(A B C D E G H I J K L);
impl_task_fn!(A B C D E G H I J K L M);

/// The entry point of a batch in a pool worker: it decodes each task's arguments, runs `F`, and
/// hands one outcome frame per task to `out`, in order.
pub(crate) type Entry = fn(batch: &[u8], out: &mut dyn Sink) -> std::io::Result<()>;

/// Where a batch's outcome frames go, one at a time.
pub(crate) trait Sink {
    /// Hands over one whole outcome frame. When this returns, the frame is the parent's even if
    /// the worker dies at once.
    fn outcome(&mut self, frame: &[u8]) -> std::io::Result<()>;

    /// A buffer to encode a batch's outcome frames into, handed back with
    /// [`keep`](Sink::keep) after the batch. A worker keeps one from batch to batch: a large
    /// outcome then lands in pages already mapped, rather than in fresh ones that fault one by
    /// one (and go back to the system when freed, to fault again for the next).
    fn buffer(&mut self) -> Vec<u8> {
        Vec::new()
    }

    /// Takes back the buffer that [`buffer`](Sink::buffer) lent.
    fn keep(&mut self, buffer: Vec<u8>) {
        drop(buffer);
    }
}

/// Collects the frames, for a pool that runs tasks in the caller's thread.
impl Sink for Vec<u8> {
    fn outcome(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(frame);
        Ok(())
    }
}

/// The [`Entry`] for `F`, to be sent (as an address) to workers forked from this process image.
pub(crate) fn entry<F: TaskFn<Args, R>, Args: Wire, R: Wire>() -> Entry {
    const { assert_no_data::<F>() };
    run_batch::<F, Args, R>
}

const fn assert_no_data<F>() {
    assert!(
        std::mem::size_of::<F>() == 0,
        "a pool runs functions by name: pass a function item or a closure that captures nothing, \
         not a function pointer or a capturing closure"
    );
}

/// Appends one task's encoded arguments to a batch: a `u32` length, then the bytes, so that a
/// worker that cannot decode one task's arguments can still skip to the next.
pub(crate) fn append_args<Args: Wire>(
    args: &Args,
    batch: &mut Vec<u8>,
) -> Result<(), codec::CodecError> {
    let start = batch.len();
    batch.extend_from_slice(&[0; 4]);
    if let Err(err) = codec::encode_into(args, batch) {
        batch.truncate(start);
        return Err(err);
    }
    let Ok(len) = u32::try_from(batch.len() - start - 4) else {
        batch.truncate(start);
        return Err(codec::CodecError::new("arguments larger than 4 GiB".into()));
    };
    batch[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Splits the next task's arguments off a batch.
pub(crate) fn split_args(batch: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = batch.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

fn run_batch<F: TaskFn<Args, R>, Args: Wire, R: Wire>(
    batch: &[u8],
    out: &mut dyn Sink,
) -> std::io::Result<()> {
    // SAFETY: `F` has no data (`entry` asserts it at compile time), so every value of it is the
    // same value, and it is `Copy`, so making one creates no ownership. The caller had one.
    let f: F = unsafe { std::mem::zeroed() };
    run_each(batch, out, |args| f.call(args))
}

/// Runs `call` on each task's arguments in `batch`, writing each outcome frame to `out` as soon
/// as it is ready.
fn run_each<Args: Wire, R: Wire>(
    mut batch: &[u8],
    out: &mut dyn Sink,
    call: impl Fn(Args) -> R,
) -> std::io::Result<()> {
    let mut buf = out.buffer();
    while let Some((args, rest)) = split_args(batch) {
        batch = rest;
        buf.clear();
        match codec::decode::<Args>(args) {
            Ok(args) => child::append_outcome(|| call(args), &mut buf),
            Err(err) => {
                let header = frame::begin(&mut buf, Tag::DecodeFailed);
                buf.extend_from_slice(err.to_string().as_bytes());
                frame::finish(&mut buf, header);
            }
        }
        // Each outcome goes out before the next task starts: should the next one crash the
        // worker, this one is already safe with the parent.
        out.outcome(&buf)?;
    }
    out.keep(buf);
    Ok(())
}

/// The [`Entry`] that runs a `#[lambda_parallel]` worker `W` on each task of a batch.
pub(crate) fn worker_entry<W: Worker>() -> Entry {
    run_worker::<W>
}

fn run_worker<W: Worker>(batch: &[u8], out: &mut dyn Sink) -> std::io::Result<()> {
    run_each::<W::Args, W::Output>(batch, out, W::call)
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
            let mut batch = Vec::new();
            append_args(&(vec![5_u8; len],), &mut batch).unwrap();
            sink.frames.clear();
            run_each(&batch, &mut sink, |(value,): (Vec<u8>,)| value).unwrap();
            let mut want = Vec::new();
            child::append_outcome(|| vec![5_u8; len], &mut want);
            assert!(sink.frames == want, "outcome of a {len}-byte value");
            assert!(sink.kept.as_ref().unwrap().capacity() >= 1 << 20);
        }
    }
}
