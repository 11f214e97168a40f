//! The function's side of a fleet: [`FleetWorker`], the wrapper around a Lambda handler that
//! runs a fleet's envelopes on the environment's own pool and hands every other event to the
//! handler. Runs in the invoked function's process (the caller's side of its own pool).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::envelope::{self, ItemOutcome, RemoteError, Request, Response};
use super::invoke::BoxFuture;
use crate::codec::Codec;
use crate::func::{self, TaskFn, Wire};
use crate::pool::Pool;

/// The depth of the envelope that the current tokio task serves, or of the batch this worker
/// runs, 0 outside one (`worker::fleet_depth`).
pub(crate) fn current_depth() -> u32 {
    crate::worker::fleet_depth()
}

/// Runs one task's items on a pool: decodes each, runs the decoded ones, encodes each outcome.
type Runner = Arc<dyn Fn(Pool, Vec<Vec<u8>>) -> BoxFuture<'static, Vec<ItemOutcome>> + Send + Sync>;

struct Served {
    codec: Codec,
    run: Runner,
}

/// The function's side of a [`Fleet`](super::Fleet): serves its envelopes on a local [`Pool`]
/// and passes every other event to the function's own handler.
///
/// Register each task that a fleet may send with [`task`](FleetWorker::task), the same form of
/// the function as the caller maps (`hash_password`, or `hash_password::TASK` for a codec of
/// its own): a task is known by its name, and a name nobody registered is refused. So is an
/// envelope from another build ([`build_id`](FleetWorker::build_id)), of another version, or
/// deeper than [`max_depth`](FleetWorker::max_depth): each refusal is an answer, which the
/// fleet reports as [`Kind::Refused`](crate::Kind::Refused) for each of its items, never an
/// envelope misread.
///
/// ```
/// use lambda_parallel::fleet::FleetWorker;
/// use lambda_parallel::{lambda_parallel, Pool};
/// use serde_json::{json, Value};
///
/// #[lambda_parallel]
/// fn double(x: u64) -> u64 {
///     x * 2
/// }
///
/// async fn my_handler(event: Value) -> Result<Value, String> {
///     Ok(json!({ "echo": event }))
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let worker = FleetWorker::new(Pool::new(2)?).task(double);
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// // In the Lambda handler: `service_fn(|event: LambdaEvent<Value>| worker.handle(event.payload, my_handler))`.
/// let answer = runtime.block_on(worker.handle(json!({ "hello": 1 }), my_handler))?;
/// assert_eq!(answer, json!({ "echo": { "hello": 1 } }));
/// # Ok(())
/// # }
/// ```
pub struct FleetWorker {
    pool: Pool,
    tasks: HashMap<&'static str, Served>,
    build: String,
    max_depth: u32,
}

impl fmt::Debug for FleetWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tasks: Vec<_> = self.tasks.keys().collect();
        tasks.sort();
        f.debug_struct("FleetWorker")
            .field("pool", &self.pool)
            .field("tasks", &tasks)
            .field("build", &self.build)
            .field("max_depth", &self.max_depth)
            .finish()
    }
}

impl FleetWorker {
    /// A wrapper that runs envelopes on `pool`, serving no task yet, refusing envelopes deeper
    /// than 1 (a fleet inside a fleet's task), with this executable's build identity.
    #[must_use]
    pub fn new(pool: Pool) -> Self {
        FleetWorker {
            pool,
            tasks: HashMap::new(),
            build: envelope::build_identity().to_owned(),
            max_depth: 1,
        }
    }

    /// Serves the task `f`: envelopes naming it run it on the pool, item by item.
    #[must_use]
    pub fn task<F, Args, R>(mut self, f: F) -> Self
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let codec = func::codec::<F, Args, R>();
        let run: Runner = Arc::new(move |pool: Pool, items: Vec<Vec<u8>>| {
            Box::pin(run_items::<F, Args, R>(f, codec, pool, items))
        });
        self.tasks.insert(func::name::<F>(), Served { codec, run });
        self
    }

    /// The deepest envelope served (default 1): a fleet called while an envelope is being
    /// served, in the tokio task that serves it, sends its envelopes one deeper, and those
    /// deeper than this are refused, so that a loop of fleets invoking the function they run in
    /// ends.
    ///
    /// The depth reaches the task wherever it runs: each batch carries it to the pool worker
    /// that runs it (and on to any pool or one-off the task starts), so a fleet that a task
    /// starts sends its envelopes one deeper than the envelope the task came from.
    #[must_use]
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.max_depth = depth;
        self
    }

    /// The build identity that envelopes must carry (default: a hash of this executable, the
    /// same as [`Fleet`](super::Fleet)'s default). Set the same on both sides, a release tag
    /// say, to let two builds of the same code serve each other.
    #[must_use]
    pub fn build_id(mut self, build: impl Into<String>) -> Self {
        self.build = build.into();
        self
    }

    /// The pool the envelopes run on.
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether `event` is a fleet's envelope (of any version): it has the key
    /// `lambda_parallel_fleet`, which no other event source sends.
    #[must_use]
    pub fn is_envelope(event: &Value) -> bool {
        event.get(envelope::MARK).is_some()
    }

    /// Serves `event` if it is an envelope, and returns the response; `None` if it is not one.
    ///
    /// A malformed, unknown or refused envelope is answered with a refusal, never an error of
    /// the invocation: the fleet reports it for each item, and does not retry.
    pub async fn serve(&self, event: &Value) -> Option<Value> {
        if !Self::is_envelope(event) {
            return None;
        }
        let response = match self.accept(event) {
            Ok((served, depth, items)) => {
                let outcomes = crate::worker::SERVED_DEPTH
                    .scope(depth, (served.run)(self.pool.clone(), items))
                    .await;
                Response {
                    lambda_parallel_fleet: envelope::VERSION,
                    outcomes: Some(outcomes),
                    refused: None,
                }
            }
            Err(reason) => Response {
                lambda_parallel_fleet: envelope::VERSION,
                outcomes: None,
                refused: Some(reason),
            },
        };
        // A response is strings and numbers only: it always has a JSON form.
        Some(serde_json::to_value(response).unwrap_or(Value::Null))
    }

    /// The wrapper around a handler: serves `event` if it is an envelope, and otherwise
    /// returns what `handler` returns for it.
    ///
    /// # Errors
    ///
    /// The handler's own, for the events it handles; an envelope's answer is never an error.
    pub async fn handle<H, Fut, E>(&self, event: Value, handler: H) -> Result<Value, E>
    where
        H: FnOnce(Value) -> Fut,
        Fut: Future<Output = Result<Value, E>>,
    {
        match self.serve(&event).await {
            Some(response) => Ok(response),
            None => handler(event).await,
        }
    }

    /// The envelope's task, depth and items, or why it is refused.
    fn accept(&self, event: &Value) -> Result<(&Served, u32, Vec<Vec<u8>>), String> {
        let version = event.get(envelope::MARK).and_then(Value::as_u64);
        if version != Some(u64::from(envelope::VERSION)) {
            return Err(format!(
                "envelope version {} is not this build's ({})",
                event[envelope::MARK],
                envelope::VERSION
            ));
        }
        let request = Request::deserialize(event).map_err(|err| format!("bad envelope: {err}"))?;
        if request.build != self.build {
            return Err(format!(
                "built from another binary (the envelope's build is `{}`, this function's `{}`)",
                request.build, self.build
            ));
        }
        if request.depth > self.max_depth {
            return Err(format!(
                "depth {} is over this function's limit of {}",
                request.depth, self.max_depth
            ));
        }
        let served = self
            .tasks
            .get(request.task)
            .ok_or_else(|| format!("this function serves no task `{}`", request.task))?;
        if request.codec != served.codec.id() {
            return Err(format!(
                "task `{}` crosses in {} here, not in codec {}",
                request.task,
                served.codec.name(),
                request.codec
            ));
        }
        let items = request
            .items
            .iter()
            .map(|item| envelope::decode_bytes(item))
            .collect::<Result<_, _>>()
            .map_err(|err| format!("bad envelope: {err}"))?;
        Ok((served, request.depth, items))
    }
}

/// One envelope's items on the pool: an item that does not decode fails alone, the others run.
async fn run_items<F, Args, R>(
    f: F,
    codec: Codec,
    pool: Pool,
    items: Vec<Vec<u8>>,
) -> Vec<ItemOutcome>
where
    F: TaskFn<Args, R>,
    Args: Wire,
    R: Wire,
{
    let name = func::name::<F>();
    let mut outcomes: Vec<Option<ItemOutcome>> = Vec::with_capacity(items.len());
    let mut args = Vec::with_capacity(items.len());
    for bytes in &items {
        match codec.decode::<Args>(bytes) {
            Ok(decoded) => {
                args.push(decoded);
                outcomes.push(None);
            }
            Err(err) => outcomes.push(Some(ItemOutcome::Err(RemoteError::codec(format!(
                "{name} could not decode its arguments: {err}"
            ))))),
        }
    }
    let decoded = args.len();
    let mut ran: Vec<ItemOutcome> = match pool.starmap_async(f, args) {
        Ok(call) => call
            .each()
            .await
            .into_iter()
            .map(|outcome| encode_outcome(name, codec, outcome))
            .collect(),
        Err(err) => (0..decoded)
            .map(|_| ItemOutcome::Err(RemoteError::of(&err)))
            .collect(),
    };
    // Every task of a call yields one outcome, so `ran` fills the gaps exactly.
    ran.reverse();
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.or_else(|| ran.pop()).unwrap_or_else(|| {
                ItemOutcome::Err(RemoteError::codec(format!(
                    "{name}: the pool gave fewer outcomes than tasks"
                )))
            })
        })
        .collect()
}

/// One task's outcome as it crosses back.
fn encode_outcome<R: Wire>(
    name: &str,
    codec: Codec,
    outcome: Result<R, crate::Error>,
) -> ItemOutcome {
    match outcome {
        Ok(value) => {
            let mut bytes = Vec::new();
            match codec.encode_into(&value, &mut bytes) {
                Ok(()) => ItemOutcome::Ok(envelope::encode_bytes(&bytes)),
                Err(err) => ItemOutcome::Err(RemoteError::codec(format!(
                    "{name} could not encode its result: {err}"
                ))),
            }
        }
        Err(err) => ItemOutcome::Err(RemoteError::of(&err)),
    }
}
