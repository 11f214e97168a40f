//! One fleet call, from the encoded items to every item's outcome: batching, the invocations
//! in flight, the deadline, and the retry rules. Caller side.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;

use super::envelope::{self, ItemOutcome, Request, Response};
use super::invoke::{Invocation, InvokeError, InvokeResponse};
use super::{Outcome, Settings};
use crate::codec::Codec;
use crate::error::{ErrorKind, FleetFailure};
use crate::func::Wire;
use crate::Error;

/// What one call runs: the fleet's settings, the deadline, and the task.
pub(crate) struct Plan {
    pub(crate) settings: Arc<Settings>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) task: &'static str,
    pub(crate) codec: Codec,
    /// The envelopes' depth: one deeper than the envelope the caller serves, if any.
    pub(crate) depth: u32,
}

/// One item: its arguments as they cross (none when they could not be encoded, and the item
/// has failed), and its history.
struct Item {
    payload: Option<String>,
    attempts: u32,
    throttles: u32,
    failures: u32,
    /// Why its last attempt failed, while it waits for the next.
    last: Option<Error>,
}

/// Items sent together, in input order, and when they may go.
struct Batch {
    items: Vec<usize>,
    not_before: Option<Instant>,
}

/// How an invocation ended, short of a response.
enum Failure {
    Invoke(InvokeError),
    /// The call took its whole time; `deadline` when that time was cut short by the deadline.
    Elapsed {
        after: Duration,
        deadline: bool,
    },
}

type Answer = Result<InvokeResponse, Failure>;

/// Runs the call, handing each item's outcome to `emit` as it is settled, in no order.
/// `inputs` holds each item's arguments in the task's codec, or why they could not be encoded.
pub(crate) async fn drive<R: Wire>(
    plan: Plan,
    inputs: Vec<Result<Vec<u8>, Error>>,
    emit: &mut (dyn FnMut(usize, Outcome<R>) + Send),
) {
    let mut call = Call {
        header: header_len(&plan),
        plan,
        items: Vec::with_capacity(inputs.len()),
        ready: VecDeque::new(),
        delayed: Vec::new(),
        in_flight: HashMap::new(),
        rng: RandomState::new().hash_one(Instant::now()) | 1,
        emit,
    };
    for (index, input) in inputs.into_iter().enumerate() {
        let payload = match input {
            Ok(bytes) => Some(envelope::encode_bytes(&bytes)),
            Err(err) => {
                (call.emit)(index, Outcome::new(Err(err.with_task(index)), 0));
                None
            }
        };
        call.items.push(Item {
            payload,
            attempts: 0,
            throttles: 0,
            failures: 0,
            last: None,
        });
    }
    call.batch_all();
    call.run().await;
}

struct Call<'a, R> {
    plan: Plan,
    /// The envelope's bytes besides its items.
    header: usize,
    items: Vec<Item>,
    ready: VecDeque<Batch>,
    delayed: Vec<Batch>,
    in_flight: HashMap<tokio::task::Id, Vec<usize>>,
    /// xorshift64 state, for the jitter.
    rng: u64,
    emit: &'a mut (dyn FnMut(usize, Outcome<R>) + Send),
}

impl<R: Wire> Call<'_, R> {
    /// Cuts the encoded items into batches, in order, each within both limits; an item too
    /// large alone fails unsent.
    fn batch_all(&mut self) {
        let settings = Arc::clone(&self.plan.settings);
        let mut batch = Vec::new();
        let mut bytes = self.header;
        for index in 0..self.items.len() {
            let Some(len) = self.items[index].payload.as_ref().map(String::len) else {
                continue;
            };
            let size = len + envelope::ITEM_OVERHEAD;
            if self.header + size > settings.max_payload_bytes {
                let failure = FleetFailure::PayloadTooLarge {
                    bytes: self.header + size,
                    limit: Some(settings.max_payload_bytes),
                };
                self.fail(index, self.error(failure));
                continue;
            }
            if !batch.is_empty()
                && (batch.len() == settings.items_per_invocation
                    || bytes + size > settings.max_payload_bytes)
            {
                self.ready.push_back(Batch {
                    items: std::mem::take(&mut batch),
                    not_before: None,
                });
                bytes = self.header;
            }
            batch.push(index);
            bytes += size;
        }
        if !batch.is_empty() {
            self.ready.push_back(Batch {
                items: batch,
                not_before: None,
            });
        }
    }

    async fn run(&mut self) {
        let mut set: JoinSet<(Vec<usize>, Answer)> = JoinSet::new();
        let mut past_deadline = false;
        loop {
            let now = Instant::now();
            if !past_deadline && self.plan.deadline.is_some_and(|deadline| now >= deadline) {
                past_deadline = true;
                let waiting: Vec<Batch> =
                    self.ready.drain(..).chain(self.delayed.drain(..)).collect();
                for index in waiting.into_iter().flat_map(|batch| batch.items) {
                    let err = self.items[index]
                        .last
                        .take()
                        .unwrap_or_else(|| self.error(FleetFailure::NotAttempted));
                    self.fail(index, err);
                }
            }
            let (due, later): (Vec<Batch>, Vec<Batch>) = self
                .delayed
                .drain(..)
                .partition(|batch| batch.not_before.is_none_or(|at| at <= now));
            self.delayed = later;
            self.ready.extend(due);
            while set.len() < self.plan.settings.max_in_flight {
                let Some(batch) = self.ready.pop_front() else {
                    break;
                };
                let items = batch.items.clone();
                let id = self.spawn(&mut set, batch.items, now).id();
                self.in_flight.insert(id, items);
            }
            if set.is_empty() && self.ready.is_empty() && self.delayed.is_empty() {
                return;
            }
            let next_due = self
                .delayed
                .iter()
                .filter_map(|batch| batch.not_before)
                .min();
            let wake = match (next_due, self.plan.deadline) {
                (Some(due), Some(deadline)) => Some(due.min(deadline)),
                (due, None) => due,
                (None, deadline) if !past_deadline => deadline,
                (None, _) => None,
            };
            let joined = match wake {
                Some(at) => {
                    let at = tokio::time::Instant::from_std(at);
                    if set.is_empty() {
                        tokio::time::sleep_until(at).await;
                        continue;
                    }
                    match tokio::time::timeout_at(at, set.join_next_with_id()).await {
                        Ok(joined) => joined,
                        Err(_) => continue,
                    }
                }
                None => set.join_next_with_id().await,
            };
            match joined {
                Some(Ok((id, (items, answer)))) => {
                    self.in_flight.remove(&id);
                    self.settle(items, answer);
                }
                Some(Err(err)) => {
                    // Only a panic in the invoker ends a task otherwise: nothing aborts them.
                    let items = self.in_flight.remove(&err.id()).unwrap_or_default();
                    for index in items {
                        self.items[index].attempts += 1;
                        let failure = FleetFailure::Transport("the invoker panicked".to_owned());
                        self.fail(index, self.error(failure));
                    }
                }
                None => {}
            }
        }
    }

    /// Sends one batch.
    fn spawn(
        &mut self,
        set: &mut JoinSet<(Vec<usize>, Answer)>,
        items: Vec<usize>,
        now: Instant,
    ) -> tokio::task::AbortHandle {
        let settings = Arc::clone(&self.plan.settings);
        let attempt = items
            .iter()
            .map(|&index| self.items[index].attempts + 1)
            .max()
            .unwrap_or(1);
        let request = Request {
            lambda_parallel_fleet: envelope::VERSION,
            task: self.plan.task,
            build: &settings.build,
            depth: self.plan.depth,
            attempt,
            codec: self.plan.codec.id(),
            items: items
                .iter()
                .filter_map(|&index| self.items[index].payload.as_deref())
                .collect(),
        };
        // Strings and numbers only: always encodes.
        let payload = serde_json::to_vec(&request).unwrap_or_default();
        let (timeout, deadline) = match self.plan.deadline {
            Some(deadline)
                if deadline.saturating_duration_since(now) <= settings.invocation_timeout =>
            {
                (deadline.saturating_duration_since(now), true)
            }
            _ => (settings.invocation_timeout, false),
        };
        let invocation = Invocation {
            function: settings.function.clone(),
            qualifier: settings.qualifier.clone(),
            payload,
            timeout,
        };
        set.spawn(async move {
            let answer =
                match tokio::time::timeout(timeout, settings.invoker.invoke(invocation)).await {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(err)) => Err(Failure::Invoke(err)),
                    Err(_) => Err(Failure::Elapsed {
                        after: timeout,
                        deadline,
                    }),
                };
            (items, answer)
        })
    }

    /// What one invocation's answer means for each of its items.
    fn settle(&mut self, items: Vec<usize>, answer: Answer) {
        for &index in &items {
            self.items[index].attempts += 1;
        }
        let response = match answer {
            Ok(response) => response,
            Err(Failure::Invoke(InvokeError::Throttled { retry_after })) => {
                return self.throttled(items, retry_after);
            }
            Err(Failure::Invoke(InvokeError::PayloadTooLarge)) => {
                return self.too_large(items);
            }
            Err(Failure::Invoke(InvokeError::Transport(msg))) => {
                return self.failed(items, || FleetFailure::Transport(msg.clone()));
            }
            Err(Failure::Elapsed { deadline: true, .. }) => {
                for index in items {
                    self.fail(index, self.error(FleetFailure::Deadline));
                }
                return;
            }
            Err(Failure::Elapsed { after, .. }) => {
                return self.failed(items, || FleetFailure::InvocationTimeout(after));
            }
        };
        if let Some(error) = response.function_error {
            let message = error_message(&response.payload);
            return self.failed(items, || FleetFailure::Function {
                error: error.clone(),
                message: message.clone(),
            });
        }
        if !(200..300).contains(&response.status) {
            let msg = format!(
                "HTTP status {}: {}",
                response.status,
                error_message(&response.payload)
            );
            return self.failed(items, || FleetFailure::Transport(msg.clone()));
        }
        let outcomes = match serde_json::from_slice::<Response>(&response.payload) {
            Ok(Response {
                lambda_parallel_fleet: envelope::VERSION,
                outcomes: Some(outcomes),
                ..
            }) if outcomes.len() == items.len() => outcomes,
            Ok(Response {
                refused: Some(reason),
                ..
            }) => {
                for index in items {
                    self.fail(index, self.error(FleetFailure::Refused(reason.clone())));
                }
                return;
            }
            _ => {
                let excerpt =
                    String::from_utf8_lossy(&response.payload[..response.payload.len().min(200)])
                        .into_owned();
                let msg = format!(
                    "the function's answer is not a fleet's response for {} items: {excerpt}",
                    items.len()
                );
                for index in items {
                    self.fail(index, self.error(FleetFailure::Transport(msg.clone())));
                }
                return;
            }
        };
        self.settle_items(items, outcomes);
    }

    /// Each item's outcome in the function's response.
    fn settle_items(&mut self, items: Vec<usize>, outcomes: Vec<ItemOutcome>) {
        let mut retry = Vec::new();
        let mut delay = Duration::ZERO;
        for (index, outcome) in items.into_iter().zip(outcomes) {
            match outcome {
                ItemOutcome::Ok(text) => {
                    let result = envelope::decode_bytes(&text)
                        .and_then(|bytes| {
                            self.plan
                                .codec
                                .decode::<R>(&bytes)
                                .map_err(|err| err.to_string())
                        })
                        .map_err(|msg| {
                            Error::new(self.plan.task, ErrorKind::Decode(msg)).with_task(index)
                        });
                    let attempts = self.items[index].attempts;
                    (self.emit)(index, Outcome::new(result, attempts));
                }
                ItemOutcome::Err(remote) => {
                    let transient = remote.is_transient();
                    let err = remote.into_error(self.plan.task);
                    if transient {
                        if let Some(wait) = self.may_retry(index, err) {
                            retry.push(index);
                            delay = delay.max(wait);
                        }
                    } else {
                        self.fail(index, err);
                    }
                }
            }
        }
        self.requeue(retry, delay);
    }

    /// Throttled: always again, after Lambda's `retryAfterSeconds` at least, until the policy's
    /// limit on throttles.
    fn throttled(&mut self, items: Vec<usize>, retry_after: Option<Duration>) {
        let mut retry = Vec::new();
        let mut delay = retry_after.unwrap_or_default();
        for index in items {
            self.items[index].throttles += 1;
            let throttles = self.items[index].throttles;
            if throttles > self.plan.settings.retry.max_throttles {
                self.fail(index, self.error(FleetFailure::Throttled { throttles }));
            } else {
                self.items[index].last = Some(self.error(FleetFailure::Throttled { throttles }));
                delay = delay.max(self.backoff(throttles));
                retry.push(index);
            }
        }
        self.requeue(retry, delay);
    }

    /// Too large: halves go again at once; an item too large alone fails.
    fn too_large(&mut self, items: Vec<usize>) {
        if items.len() == 1 {
            let index = items[0];
            let len = self.items[index].payload.as_ref().map_or(0, String::len);
            let bytes = self.header + len + envelope::ITEM_OVERHEAD;
            let failure = FleetFailure::PayloadTooLarge { bytes, limit: None };
            self.fail(index, self.error(failure));
            return;
        }
        let mut first = items;
        let second = first.split_off(first.len() / 2);
        for items in [first, second] {
            self.ready.push_front(Batch {
                items,
                not_before: None,
            });
        }
    }

    /// A failure after which the work may or may not have run: again only when the tasks are
    /// idempotent and the policy allows.
    fn failed(&mut self, items: Vec<usize>, failure: impl Fn() -> FleetFailure) {
        let mut retry = Vec::new();
        let mut delay = Duration::ZERO;
        for index in items {
            if let Some(wait) = self.may_retry(index, self.error(failure())) {
                retry.push(index);
                delay = delay.max(wait);
            }
        }
        self.requeue(retry, delay);
    }

    /// Whether item `index`, which just failed with `err`, goes again (after the returned
    /// wait); if not, it fails with `err`.
    fn may_retry(&mut self, index: usize, err: Error) -> Option<Duration> {
        let item = &mut self.items[index];
        item.failures += 1;
        let failures = item.failures;
        if self.plan.settings.idempotent && failures < self.plan.settings.retry.max_attempts {
            self.items[index].last = Some(err);
            Some(self.backoff(failures))
        } else {
            self.fail(index, err);
            None
        }
    }

    fn requeue(&mut self, items: Vec<usize>, delay: Duration) {
        if items.is_empty() {
            return;
        }
        self.delayed.push(Batch {
            items,
            not_before: Some(Instant::now() + delay),
        });
    }

    /// The `n`th retry's wait: exponential from the policy's base, up to its cap, with half of
    /// it random ("equal jitter"), so that throttled callers do not come back together.
    fn backoff(&mut self, n: u32) -> Duration {
        self.plan.settings.retry.wait(n, &mut self.rng)
    }

    fn error(&self, failure: FleetFailure) -> Error {
        Error::new(self.plan.task, ErrorKind::Fleet(failure))
    }

    fn fail(&mut self, index: usize, err: Error) {
        let attempts = self.items[index].attempts;
        self.items[index].last = None;
        (self.emit)(index, Outcome::new(Err(err.with_task(index)), attempts));
    }
}

/// The bytes of an envelope with no items.
fn header_len(plan: &Plan) -> usize {
    let request = Request {
        lambda_parallel_fleet: envelope::VERSION,
        task: plan.task,
        build: &plan.settings.build,
        depth: u32::MAX,
        attempt: u32::MAX,
        codec: plan.codec.id(),
        items: Vec::new(),
    };
    serde_json::to_vec(&request).map_or(0, |bytes| bytes.len())
}

/// Lambda's `errorMessage` in an error document, or the start of the payload.
fn error_message(payload: &[u8]) -> String {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => match (map.get("errorType"), map.get("errorMessage")) {
            (Some(Value::String(kind)), Some(Value::String(msg))) => format!("{kind}: {msg}"),
            (_, Some(Value::String(msg))) => msg.clone(),
            _ => Value::Object(map).to_string(),
        },
        _ => String::from_utf8_lossy(&payload[..payload.len().min(200)]).into_owned(),
    }
}
