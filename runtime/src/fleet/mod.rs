//! Tasks fanned out over Lambda invocations (the `fleet` feature): the same `#[lambda_parallel]`
//! function, in the same deployed binary, runs in other execution environments through the
//! Invoke API, each of which runs its share on its own local [`Pool`](crate::Pool). The
//! [`Fleet`] here (`mod`) and its call (`run`), the invoke interface (`invoke`), the envelope
//! (`envelope`), and the function's side, [`FleetWorker`] (`serve`). No AWS dependency: the
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

mod envelope;
mod invoke;
mod run;
mod serve;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use tokio::sync::mpsc;

pub use self::invoke::{BoxFuture, Invocation, Invoke, InvokeError, InvokeResponse};
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
        FleetBuilder {
            invoker: Arc::new(invoker),
            function: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
            qualifier: std::env::var("AWS_LAMBDA_FUNCTION_VERSION").ok(),
            max_in_flight: 10,
            items_per_invocation: 100,
            max_payload_bytes: 5 * 1024 * 1024,
            invocation_timeout: Duration::from_secs(15 * 60),
            retry: RetryPolicy::default(),
            idempotent: false,
            deadline: None,
            build: None,
        }
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
        FleetStream { outcomes, task }
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
    /// The item's failure (see the [module](self)).
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

/// The outcomes of [`Fleet::map_unordered`], as they are settled: each item's index among the
/// inputs and its [`Outcome`]. A `futures_core::Stream`.
pub struct FleetStream<R> {
    outcomes: mpsc::UnboundedReceiver<(usize, Outcome<R>)>,
    task: tokio::task::JoinHandle<()>,
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

/// How a fleet retries: how often, and how long it waits between attempts.
///
/// Throttles are always retried, after Lambda's `retryAfterSeconds` at least, up to
/// [`max_throttles`](RetryPolicy::max_throttles) times and until the deadline; other failures
/// after which the work may have run, only for idempotent tasks, up to
/// [`max_attempts`](RetryPolicy::max_attempts) invocations in all. Each wait is exponential,
/// from [`base_delay`](RetryPolicy::base_delay) up to [`max_delay`](RetryPolicy::max_delay),
/// half of it random.
///
/// ```
/// use std::time::Duration;
/// use lambda_parallel::fleet::RetryPolicy;
///
/// let policy = RetryPolicy::default().max_attempts(5).base_delay(Duration::from_millis(50));
/// assert_eq!(policy.attempts(), 5);
/// ```
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) max_throttles: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 20 throttles, waits from 100 ms up to 10 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            max_throttles: 20,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The most invocations that an idempotent item's failures may take (default 3; 1 retries
    /// nothing). Throttled invocations do not count.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The most throttled invocations an item is retried after (default 20).
    #[must_use]
    pub fn max_throttles(mut self, throttles: u32) -> Self {
        self.max_throttles = throttles;
        self
    }

    /// The first retry's wait (default 100 ms); each later one doubles it.
    #[must_use]
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest wait (default 10 s).
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The most invocations that an idempotent item's failures may take.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }
}

/// Builds a [`Fleet`]: see [`Fleet::builder`] for the defaults.
pub struct FleetBuilder {
    invoker: Arc<dyn Invoke>,
    function: Option<String>,
    qualifier: Option<String>,
    max_in_flight: usize,
    items_per_invocation: usize,
    max_payload_bytes: usize,
    invocation_timeout: Duration,
    retry: RetryPolicy,
    idempotent: bool,
    deadline: Option<Instant>,
    build: Option<String>,
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("function", &self.function)
            .field("qualifier", &self.qualifier)
            .field("max_in_flight", &self.max_in_flight)
            .field("items_per_invocation", &self.items_per_invocation)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .finish_non_exhaustive()
    }
}

impl FleetBuilder {
    /// The function to invoke, by name or ARN (default: `AWS_LAMBDA_FUNCTION_NAME`).
    #[must_use]
    pub fn function(mut self, function: impl Into<String>) -> Self {
        self.function = Some(function.into());
        self
    }

    /// Its version or alias (default: `AWS_LAMBDA_FUNCTION_VERSION`); `None` for `$LATEST`.
    #[must_use]
    pub fn qualifier(mut self, qualifier: Option<String>) -> Self {
        self.qualifier = qualifier;
        self
    }

    /// The most invocations under way at once (default 10): keep it within the function's
    /// reserved or the account's concurrency, or Lambda throttles the rest.
    #[must_use]
    pub fn max_in_flight(mut self, invocations: usize) -> Self {
        self.max_in_flight = invocations;
        self
    }

    /// The most items to an invocation (default 100): enough to keep a remote pool busy.
    #[must_use]
    pub fn items_per_invocation(mut self, items: usize) -> Self {
        self.items_per_invocation = items;
        self
    }

    /// The most bytes of an invocation's payload (default 5 MiB, at most
    /// [`MAX_PAYLOAD_BYTES`]). Items cross as base64 of their codec's bytes, so a 3 MiB item
    /// takes 4 MiB.
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// The longest an invocation may take before the fleet gives up on its answer (default 15
    /// minutes); the deadline shortens it.
    #[must_use]
    pub fn invocation_timeout(mut self, timeout: Duration) -> Self {
        self.invocation_timeout = timeout;
        self
    }

    /// How failed invocations are retried.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Whether a task may run more than once (default `false`): then items whose invocation
    /// failed after the work may have run (a crash, a timeout, a lost answer, a function error)
    /// are retried, at least once semantics. Throttled items are retried either way.
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// The deadline of every call (default none); see [`Fleet::with_deadline`].
    #[must_use]
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The build identity the envelopes carry (default: a hash of this executable); see
    /// [`FleetWorker::build_id`].
    #[must_use]
    pub fn build_id(mut self, build: impl Into<String>) -> Self {
        self.build = Some(build.into());
        self
    }

    /// The fleet.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: no function to invoke (none given, and no `AWS_LAMBDA_FUNCTION_NAME`),
    /// no invocation allowed in flight, no item allowed in an invocation, or a payload limit
    /// over [`MAX_PAYLOAD_BYTES`].
    pub fn build(self) -> Result<Fleet, ConfigError> {
        let function = self
            .function
            .filter(|name| !name.is_empty())
            .ok_or(ConfigError(
                "no function to invoke: set `function`, or run on Lambda",
            ))?;
        if self.max_in_flight == 0 {
            return Err(ConfigError("`max_in_flight` must be at least 1"));
        }
        if self.items_per_invocation == 0 {
            return Err(ConfigError("`items_per_invocation` must be at least 1"));
        }
        if self.max_payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(ConfigError(
                "`max_payload_bytes` is over Lambda's synchronous limit of 6 MB",
            ));
        }
        Ok(Fleet {
            settings: Arc::new(Settings {
                invoker: self.invoker,
                function,
                qualifier: self.qualifier,
                max_in_flight: self.max_in_flight,
                items_per_invocation: self.items_per_invocation,
                max_payload_bytes: self.max_payload_bytes,
                invocation_timeout: self.invocation_timeout,
                retry: self.retry,
                idempotent: self.idempotent,
                build: self
                    .build
                    .unwrap_or_else(|| envelope::build_identity().to_owned()),
            }),
            deadline: self.deadline,
        })
    }
}

/// A fleet that cannot be built: the message says which setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(&'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ConfigError {}

/// An invoker that serves every invocation in this process, through a [`FleetWorker`]: the
/// whole fleet, envelope and all, without Lambda. For tests, and to run a fleet's code locally.
///
/// An event that is not an envelope is answered with `null`.
pub struct Loopback {
    worker: FleetWorker,
}

impl fmt::Debug for Loopback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loopback")
            .field("worker", &self.worker)
            .finish()
    }
}

impl Loopback {
    /// An invoker whose every invocation `worker` serves.
    #[must_use]
    pub fn new(worker: FleetWorker) -> Self {
        Loopback { worker }
    }

    /// The worker.
    #[must_use]
    pub fn worker(&self) -> &FleetWorker {
        &self.worker
    }
}

impl Invoke for Loopback {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<InvokeResponse, InvokeError>> {
        Box::pin(async move {
            let event: serde_json::Value = serde_json::from_slice(&invocation.payload)
                .map_err(|err| InvokeError::Transport(format!("the payload is not JSON: {err}")))?;
            let answer = self.worker.serve(&event).await.unwrap_or_default();
            Ok(InvokeResponse {
                status: 200,
                function_error: None,
                payload: serde_json::to_vec(&answer).unwrap_or_default(),
            })
        })
    }
}
