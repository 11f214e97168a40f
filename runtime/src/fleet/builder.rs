//! How a [`Fleet`] is set up: [`FleetBuilder`], its [`RetryPolicy`], and why a setting is
//! refused ([`ConfigError`]). Caller side.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{envelope, Fleet, Invoke, Settings, MAX_PAYLOAD_BYTES};

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

    /// The wait before the `n`th retry (from 1): exponential from the base, up to the cap, with
    /// the upper half random ("equal jitter": never less than half, so that a throttled caller
    /// backs off, and spread, so that throttled callers do not come back together). `rng` is
    /// xorshift64 state, never 0.
    pub(crate) fn wait(&self, n: u32, rng: &mut u64) -> Duration {
        let full = self
            .base_delay
            .saturating_mul(1 << n.saturating_sub(1).min(20))
            .min(self.max_delay);
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let half = full / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(*rng % nanos.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wait_is_between_half_and_all_of_its_exponential_step_up_to_the_cap() {
        let policy = RetryPolicy::default()
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(10));
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        for n in 1..=40 {
            let full = (Duration::from_millis(100) * 2u32.pow((n - 1).min(20)))
                .min(Duration::from_secs(10));
            let waits: Vec<Duration> = (0..200).map(|_| policy.wait(n, &mut rng)).collect();
            assert!(
                waits.iter().all(|wait| *wait >= full / 2 && *wait <= full),
                "retry {n}: {waits:?} outside {full:?}"
            );
            let first = waits[0];
            assert!(
                waits.iter().any(|wait| *wait != first),
                "retry {n}: no jitter"
            );
        }
    }

    #[test]
    fn a_zero_base_waits_nothing() {
        let policy = RetryPolicy::default().base_delay(Duration::ZERO);
        let mut rng = 1;
        assert_eq!(policy.wait(5, &mut rng), Duration::ZERO);
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
    /// The defaults that [`Fleet::builder`] documents.
    pub(super) fn new(invoker: Arc<dyn Invoke>) -> Self {
        FleetBuilder {
            invoker,
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
    /// [`FleetWorker::build_id`](super::FleetWorker::build_id).
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
