//! What a fleet call gives back: each item's [`Outcome`], and the [`FleetStream`] of them in
//! the order they are settled. Caller side.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;

use crate::Error;

/// One item's outcome across a fleet, and how many invocations carried it.
///
/// ```
/// use lambda_parallel::fleet::{Fleet, FleetWorker, Loopback};
/// use lambda_parallel::Pool;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let negate = |x: i64| -x;
/// let fleet = Fleet::builder(Loopback::new(FleetWorker::new(Pool::new(1)?).task(negate)))
///     .function("f")
///     .build()?;
/// let outcomes = runtime.block_on(fleet.map_outcomes(negate, [1, 2]));
/// assert_eq!(outcomes[1].result().as_ref().ok(), Some(&-2));
/// assert_eq!(outcomes[1].attempts(), 1); // the first invocation answered
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Outcome<R> {
    result: Result<R, Error>,
    attempts: u32,
}

impl<R> Outcome<R> {
    pub(crate) fn new(result: Result<R, Error>, attempts: u32) -> Self {
        Outcome { result, attempts }
    }

    /// The item's result, as [`Pool::map_each`](crate::Pool::map_each) gives it.
    pub fn result(&self) -> &Result<R, Error> {
        &self.result
    }

    /// The item's result, owned.
    ///
    /// # Errors
    ///
    /// The item's failure (see the [module](super)).
    pub fn into_result(self) -> Result<R, Error> {
        self.result
    }

    /// How many invocations carried the item: 1 when the first answered, 0 when it was never
    /// sent (too large, not encodable, or not attempted before the deadline), more when it was
    /// retried.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// The outcomes of [`Fleet::map_unordered`](super::Fleet::map_unordered), as they are settled: each item's index among the
/// inputs and its [`Outcome`]. A `futures_core::Stream`.
pub struct FleetStream<R> {
    outcomes: mpsc::UnboundedReceiver<(usize, Outcome<R>)>,
    task: tokio::task::JoinHandle<()>,
}

impl<R> FleetStream<R> {
    pub(super) fn new(
        outcomes: mpsc::UnboundedReceiver<(usize, Outcome<R>)>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        FleetStream { outcomes, task }
    }
}

impl<R> fmt::Debug for FleetStream<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetStream")
            .field("finished", &self.task.is_finished())
            .finish_non_exhaustive()
    }
}

impl<R> Stream for FleetStream<R> {
    type Item = (usize, Outcome<R>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.outcomes.poll_recv(cx)
    }
}

impl<R> Drop for FleetStream<R> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
