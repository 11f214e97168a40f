//! [`Loopback`]: an invoker that serves a fleet's invocations in this process, through a
//! [`FleetWorker`]. Both sides at once.

use std::fmt;

use super::{BoxFuture, FleetWorker, Invocation, Invoke, InvokeError, InvokeResponse};

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
