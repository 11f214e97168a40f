//! Tasks fanned out over Lambda invocations (the `fleet` feature): the same `#[lambda_parallel]`
//! function, in the same deployed binary, runs in other execution environments through the
//! Invoke API, each of which runs its share on its own local [`Pool`](crate::Pool). The
//! [`Fleet`] here (`mod`), its setup (`builder`), one call (`run`) and its outcomes
//! (`outcome`), the invoke interface (`invoke`) and the in-process invoker (`loopback`), the
//! envelope (`envelope`), and the function's side, [`FleetWorker`] (`serve`). No AWS dependency: the
//! invoker is a trait ([`Invoke`]), which the `lambda-parallel-aws` crate implements on
//! `aws-sdk-lambda`, and [`Loopback`] in process.
//!
//! ```
//! use lambda_parallel::fleet::{Fleet, FleetWorker, Loopback};
//! use lambda_parallel::{lambda_parallel, Pool};
//!
//! #[lambda_parallel]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! // The function's side: in each execution environment, around the handler.
//! let worker = FleetWorker::new(Pool::new(2)?).task(square);
//! // The caller's side: here in process; on Lambda, `lambda_parallel_aws::LambdaInvoker`.
//! let fleet = Fleet::builder(Loopback::new(worker))
//!     .function("my-function")
//!     .items_per_invocation(10)
//!     .build()?;
//! let squares = runtime.block_on(fleet.map_each(square, 0..100));
//! assert_eq!(squares[9].as_ref().ok(), Some(&81));
//! # Ok(())
//! # }
//! ```
//!
//! # Failures
//!
//! Each item's outcome is its own, as in [`Pool::map_each`](crate::Pool::map_each), and says
//! how many invocations carried it ([`Outcome::attempts`]):
//!
//! | what happened | [`Kind`](crate::Kind) | retried |
//! |---|---|---|
//! | the task returned its own `Err` | (inside `Ok`) | no |
//! | it panicked in the remote pool | `Panic` | no |
//! | its remote worker crashed, exited or timed out | `Signal`, `Exit`, `Timeout` | when idempotent |
//! | the invocation failed (`FunctionError`: `Unhandled`, `Runtime.ExitError`, `Sandbox.Timedout`) | `FunctionError` | when idempotent |
//! | the call failed in transit, or took its whole timeout | `Transport`, `Timeout` | when idempotent |
//! | Lambda throttled it (`TooManyRequestsException`) | `Throttled` | always, after `retryAfterSeconds` at least |
//! | it is too large for an invocation alone | `PayloadTooLarge` | no (a batch too large is split) |
//! | the deadline passed while its invocation was under way | `Deadline` | no |
//! | the deadline passed before it was sent | `NotAttempted` | no |
//! | the function refused the envelope (another build, too deep, an unknown task) | `Refused` | no |
//!
//! Retrying a task whose work may have run makes the fleet *at least once*: an idempotent
//! task (see [`FleetBuilder::idempotent`]) may run twice when an invocation's answer is lost,
//! and each outcome is still given once, from the attempt that answered.

mod builder;
mod envelope;
mod invoke;
mod loopback;
mod outcome;
mod run;
mod serve;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use self::builder::{ConfigError, FleetBuilder, RetryPolicy};
pub use self::invoke::{BoxFuture, Invocation, Invoke, InvokeError, InvokeResponse};
pub use self::loopback::Loopback;
pub use self::outcome::{FleetStream, Outcome};
pub use self::serve::FleetWorker;
use crate::func::{self, TaskFn, Wire};
use crate::Error;

/// Lambda's limit on a synchronous invocation's payload, each way: 6 MB.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// Tasks run across Lambda invocations: each invocation carries a batch of items to an
/// execution environment of the function, whose [`FleetWorker`] runs them on its own pool.
///
/// A fleet is a cheap handle (an `Arc` inside): clone it, or narrow it to one call's deadline
/// with [`with_deadline`](Fleet::with_deadline). Calls must run inside a tokio runtime.
#[derive(Clone)]
pub struct Fleet {
    settings: Arc<Settings>,
    deadline: Option<Instant>,
}

/// What every call of a fleet shares.
pub(crate) struct Settings {
    pub(crate) invoker: Arc<dyn Invoke>,
    pub(crate) function: String,
    pub(crate) qualifier: Option<String>,
    pub(crate) max_in_flight: usize,
    pub(crate) items_per_invocation: usize,
    pub(crate) max_payload_bytes: usize,
    pub(crate) invocation_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) idempotent: bool,
    pub(crate) build: String,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("Fleet")
            .field("function", &s.function)
            .field("qualifier", &s.qualifier)
            .field("max_in_flight", &s.max_in_flight)
            .field("items_per_invocation", &s.items_per_invocation)
            .field("max_payload_bytes", &s.max_payload_bytes)
            .field("invocation_timeout", &s.invocation_timeout)
            .field("retry", &s.retry)
            .field("idempotent", &s.idempotent)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// A builder of a fleet that invokes through `invoker`.
    ///
    /// The function defaults to this one, `AWS_LAMBDA_FUNCTION_NAME` at version
    /// `AWS_LAMBDA_FUNCTION_VERSION` (so that caller and workers run the same code); 10
    /// invocations in flight; 100 items and 5 MiB to an invocation; no deadline; each
    /// invocation given 15 minutes (Lambda's longest) or until the deadline; the default
    /// [`RetryPolicy`]; tasks not idempotent.
    pub fn builder(invoker: impl Invoke) -> FleetBuilder {
        FleetBuilder::new(Arc::new(invoker))
    }

    /// The same fleet, whose calls end by `deadline`: invocations under way then are given up
    /// ([`Kind::Deadline`](crate::Kind::Deadline)), items not yet sent fail unsent
    /// ([`Kind::NotAttempted`](crate::Kind::NotAttempted)). In a Lambda handler, the
    /// invocation's own deadline less a margin.
    #[must_use]
    pub fn with_deadline(&self, deadline: Instant) -> Fleet {
        Fleet {
            settings: Arc::clone(&self.settings),
            deadline: Some(deadline),
        }
    }

    /// Calls `f` on every input across the fleet, and returns every item's outcome in input
    /// order: the same outcomes as [`Pool::map_each`](crate::Pool::map_each)'s, and more ways
    /// to fail (see the [module](self)). All the invocations have ended when it returns.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn map_each<F, A, R, I>(&self, f: F, inputs: I) -> Vec<Result<R, Error>>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        self.starmap_outcomes(f, inputs.into_iter().map(|a| (a,)))
            .await
            .into_iter()
            .map(Outcome::into_result)
            .collect()
    }

    /// Like [`map_each`](Fleet::map_each), for functions of several arguments: each input is a
    /// tuple of them.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn starmap_each<F, Args, R, I>(&self, f: F, inputs: I) -> Vec<Result<R, Error>>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
        I: IntoIterator<Item = Args>,
    {
        self.starmap_outcomes(f, inputs)
            .await
            .into_iter()
            .map(Outcome::into_result)
            .collect()
    }

    /// Like [`map_each`](Fleet::map_each), with each item's number of attempts.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn map_outcomes<F, A, R, I>(&self, f: F, inputs: I) -> Vec<Outcome<R>>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        self.starmap_outcomes(f, inputs.into_iter().map(|a| (a,)))
            .await
    }

    /// Like [`starmap_each`](Fleet::starmap_each), with each item's number of attempts.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn starmap_outcomes<F, Args, R, I>(&self, f: F, inputs: I) -> Vec<Outcome<R>>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
        I: IntoIterator<Item = Args>,
    {
        let _ = f;
        let (plan, inputs) = self.prepare::<F, Args, R>(inputs);
        let mut outcomes: Vec<Option<Outcome<R>>> = (0..inputs.len()).map(|_| None).collect();
        run::drive(plan, inputs, &mut |index, outcome| {
            outcomes[index] = Some(outcome);
        })
        .await;
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| unreachable_outcome::<F, R>()))
            .collect()
    }

    /// Calls `f` on every input across the fleet, and yields each item's index and outcome as
    /// it is settled, in no order. The call runs as a tokio task of its own; dropping the stream
    /// gives up its invocations.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::pin::Pin;
    ///
    /// use futures_core::Stream;
    /// use lambda_parallel::fleet::{Fleet, FleetWorker, Loopback};
    /// use lambda_parallel::Pool;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let double = |x: u64| x * 2;
    /// let worker = FleetWorker::new(Pool::new(2)?).task(double);
    /// let fleet = Fleet::builder(Loopback::new(worker)).function("f").build()?;
    /// let total = runtime.block_on(async {
    ///     let mut outcomes = fleet.map_unordered(double, 1..=10);
    ///     let mut total = 0;
    ///     while let Some((_index, outcome)) = poll_fn(|cx| Pin::new(&mut outcomes).poll_next(cx)).await {
    ///         total += outcome.into_result()?;
    ///     }
    ///     Ok::<_, lambda_parallel::Error>(total)
    /// })?;
    /// assert_eq!(total, 110);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn map_unordered<F, A, R, I>(&self, f: F, inputs: I) -> FleetStream<R>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        let (plan, inputs) = self.prepare::<F, (A,), R>(inputs.into_iter().map(|a| (a,)));
        let (send, outcomes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            run::drive(plan, inputs, &mut |index, outcome| {
                // A dropped stream has aborted this task, or is about to.
                let _ = send.send((index, outcome));
            })
            .await;
        });
        FleetStream::new(outcomes, task)
    }

    fn prepare<F, Args, R>(
        &self,
        inputs: impl IntoIterator<Item = Args>,
    ) -> (run::Plan, Vec<Result<Vec<u8>, Error>>)
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let codec = func::codec::<F, Args, R>();
        let task = func::name::<F>();
        let inputs = inputs
            .into_iter()
            .map(|args| {
                let mut bytes = Vec::new();
                codec
                    .encode_into(&args, &mut bytes)
                    .map(|()| bytes)
                    .map_err(|err| {
                        Error::new(task, crate::error::ErrorKind::EncodeArgs(err.to_string()))
                    })
            })
            .collect();
        let plan = run::Plan {
            settings: Arc::clone(&self.settings),
            deadline: self.deadline,
            task,
            codec,
            depth: serve::current_depth().saturating_add(1),
        };
        (plan, inputs)
    }
}

/// Every item is settled exactly once (`run` emits each index once): should one be missed, it
/// reads as a failure in transit rather than a panic.
fn unreachable_outcome<F, R>() -> Outcome<R> {
    let failure = crate::error::FleetFailure::Transport("the item was never settled".to_owned());
    let err = Error::new(func::name::<F>(), crate::error::ErrorKind::Fleet(failure));
    Outcome::new(Err(err), 0)
}
