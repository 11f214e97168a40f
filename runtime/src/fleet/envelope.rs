//! The bytes between a fleet and the functions it invokes, both ends: the versioned request
//! envelope, the response, a remote failure as it crosses, and the build identity. Both sides.
//!
//! A request is JSON, as Lambda's Invoke API requires:
//!
//! ```json
//! {"lambda_parallel_fleet": 1, "task": "app::hash_password", "build": "9f2c…",
//!  "depth": 1, "attempt": 1, "codec": 1, "items": ["kqd…", "…"]}
//! ```
//!
//! Each item is one task's argument tuple in the task's codec, base64 (so every type that
//! crosses to a local worker crosses here too, bytes in bulk); a response holds one outcome per
//! item, in order, or a refusal of the whole envelope:
//!
//! ```json
//! {"lambda_parallel_fleet": 1, "outcomes": [{"ok": "…"}, {"err": {"kind": "Panic", …}}]}
//! {"lambda_parallel_fleet": 1, "refused": "built from another binary (…)"}
//! ```

use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, FleetFailure, PanicReport};
use crate::{Error, Kind};

/// The envelope's version. Another version is refused, never read as this one.
pub(crate) const VERSION: u32 = 1;

/// The key that marks a fleet's envelope (and response) among a function's events.
pub(crate) const MARK: &str = "lambda_parallel_fleet";

/// A request: one batch of one task's items.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request<'a> {
    pub(crate) lambda_parallel_fleet: u32,
    #[serde(borrow)]
    pub(crate) task: &'a str,
    #[serde(borrow)]
    pub(crate) build: &'a str,
    pub(crate) depth: u32,
    pub(crate) attempt: u32,
    pub(crate) codec: u8,
    #[serde(borrow)]
    pub(crate) items: Vec<&'a str>,
}

/// The bytes of a request's JSON before and after its items, and between two items, so that a
/// batch's size is known before it is written.
pub(crate) const ITEM_OVERHEAD: usize = 3; // `"…",`

/// A response: an outcome per item, in order, or a refusal.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) lambda_parallel_fleet: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) outcomes: Option<Vec<ItemOutcome>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<String>,
}

/// One item's outcome: the result in the task's codec, base64, or the failure.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ItemOutcome {
    Ok(String),
    Err(RemoteError),
}

/// A failure of the remote pool, with what the caller needs to rebuild it as its own kind.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RemoteError {
    /// The [`Kind`], by its name.
    pub(crate) kind: String,
    /// What the remote `Error` said.
    pub(crate) message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) panic: Option<PanicReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout_ms: Option<u64>,
}

/// The kinds that cross by name, and their names. A kind this build does not know (a newer
/// remote) arrives as [`Kind::Io`], with its message.
const KINDS: [(Kind, &str); 19] = [
    (Kind::Panic, "Panic"),
    (Kind::Signal, "Signal"),
    (Kind::Exit, "Exit"),
    (Kind::Timeout, "Timeout"),
    (Kind::Deadline, "Deadline"),
    (Kind::Codec, "Codec"),
    (Kind::Frame, "Frame"),
    (Kind::Spawn, "Spawn"),
    (Kind::Closed, "Closed"),
    (Kind::ServerGone, "ServerGone"),
    (Kind::Io, "Io"),
    (Kind::FunctionError, "FunctionError"),
    (Kind::Throttled, "Throttled"),
    (Kind::PayloadTooLarge, "PayloadTooLarge"),
    (Kind::Transport, "Transport"),
    (Kind::NotAttempted, "NotAttempted"),
    (Kind::Refused, "Refused"),
    (Kind::Oom, "Oom"),
    (Kind::Initializer, "Initializer"),
];

/// A kind's name: a match, so that a new kind does not compile until it has one (and its
/// place in [`KINDS`], which the tests check).
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Panic => "Panic",
        Kind::Signal => "Signal",
        Kind::Exit => "Exit",
        Kind::Timeout => "Timeout",
        Kind::Deadline => "Deadline",
        Kind::Codec => "Codec",
        Kind::Frame => "Frame",
        Kind::Spawn => "Spawn",
        Kind::Closed => "Closed",
        Kind::ServerGone => "ServerGone",
        Kind::Io => "Io",
        Kind::FunctionError => "FunctionError",
        Kind::Throttled => "Throttled",
        Kind::PayloadTooLarge => "PayloadTooLarge",
        Kind::Transport => "Transport",
        Kind::NotAttempted => "NotAttempted",
        Kind::Refused => "Refused",
        Kind::Oom => "Oom",
        Kind::Initializer => "Initializer",
    }
}

fn kind_named(name: &str) -> Kind {
    KINDS
        .iter()
        .find(|(_, known)| *known == name)
        .map_or(Kind::Io, |(kind, _)| *kind)
}

impl RemoteError {
    /// What crosses of a remote pool's failure.
    pub(crate) fn of(err: &Error) -> Self {
        let kind = err.kind();
        RemoteError {
            kind: kind_name(kind).to_owned(),
            message: err.to_string(),
            panic: err.panic_message().map(|message| PanicReport {
                message: message.to_owned(),
                location: err.panic_location().cloned(),
            }),
            code: err.signal().or(err.exit_code()),
            timeout_ms: err
                .timeout_after()
                .map(|after| u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// A value that could not be decoded or encoded on the function's side.
    pub(crate) fn codec(message: String) -> Self {
        RemoteError {
            kind: kind_name(Kind::Codec).to_owned(),
            message,
            panic: None,
            code: None,
            timeout_ms: None,
        }
    }

    /// The failure as the caller's own: a panic, crash, exit or timeout as the pool's, the rest
    /// with its kind and text.
    pub(crate) fn into_error(self, worker: &'static str) -> Error {
        let kind = kind_named(&self.kind);
        let local = match (kind, self.panic, self.code, self.timeout_ms) {
            (Kind::Panic, Some(report), _, _) => ErrorKind::Panic(report),
            (Kind::Signal, _, Some(signal), _) => ErrorKind::Signal(signal),
            (Kind::Exit, _, Some(code), _) => ErrorKind::Exit(code),
            (Kind::Timeout, _, _, Some(ms)) => ErrorKind::Timeout(Duration::from_millis(ms)),
            (Kind::Deadline, ..) => ErrorKind::Deadline,
            _ => ErrorKind::Fleet(FleetFailure::Remote {
                kind,
                message: self.message,
            }),
        };
        Error::new(worker, local)
    }

    /// Whether running the task again might succeed: the process died or ran out of time,
    /// rather than the task's own code failing (a panic) or its value being wrong.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            kind_named(&self.kind),
            Kind::Signal | Kind::Exit | Kind::Oom | Kind::Timeout | Kind::Deadline | Kind::Spawn
        )
    }
}

/// Base64 of `bytes`, as items and results cross.
pub(crate) fn encode_bytes(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The bytes of a base64 item or result.
pub(crate) fn decode_bytes(text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .map_err(|err| format!("bad base64: {err}"))
}

/// This build's identity: a hash of the running executable, read once. Two processes that
/// agree on it run the same code, so a task's name means the same function in both.
pub(crate) fn build_identity() -> &'static str {
    static BUILD: OnceLock<String> = OnceLock::new();
    BUILD.get_or_init(|| match hash_executable() {
        Ok(hash) => format!("exe-{hash:016x}"),
        // No executable to read (a sandbox without /proc): the crate's version alone, which
        // `Fleet::build_id` and `FleetWorker::build_id` can sharpen.
        Err(_) => format!("lambda-parallel-{}", env!("CARGO_PKG_VERSION")),
    })
}

fn hash_executable() -> std::io::Result<u64> {
    use std::hash::Hasher;
    // `DefaultHasher::new` has fixed keys: the same bytes give the same hash in every process
    // of one build, which is all it must do (the two ends run the same binary, or differ).
    let mut hasher = std::hash::DefaultHasher::new();
    let mut file = std::fs::File::open("/proc/self/exe")?;
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.write(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_crosses_by_its_own_name() {
        for (kind, name) in KINDS {
            assert_eq!(kind_name(kind), name);
            assert_eq!(kind_named(name), kind);
            assert_eq!(format!("{kind:?}"), name, "the name is the variant's");
        }
        assert_eq!(kind_named("SomethingNewer"), Kind::Io);
    }

    #[test]
    fn a_remote_timeout_comes_back_as_a_timeout_of_the_same_length() {
        let remote = RemoteError {
            kind: "Timeout".to_owned(),
            message: "task 0 of worker `f` timed out after 2s and was killed".to_owned(),
            panic: None,
            code: None,
            timeout_ms: Some(2_000),
        };
        assert!(remote.is_transient());
        let err = remote.into_error("f");
        assert_eq!(err.kind(), Kind::Timeout);
        assert_eq!(err.timeout_after(), Some(Duration::from_secs(2)));
        let again = RemoteError::of(&err);
        assert_eq!(again.timeout_ms, Some(2_000));
    }

    #[test]
    fn a_remote_codec_error_keeps_its_kind_and_text_and_is_not_transient() {
        let remote = RemoteError::codec("`u8` in msgpack: out of range".to_owned());
        assert!(!remote.is_transient());
        let err = remote.into_error("f");
        assert_eq!(err.kind(), Kind::Codec);
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn a_request_reads_back_borrowing_its_items() {
        let item = encode_bytes(b"\x91\x07");
        let request = Request {
            lambda_parallel_fleet: VERSION,
            task: "app::f",
            build: "b",
            depth: 1,
            attempt: 2,
            codec: 1,
            items: vec![&item],
        };
        let bytes = serde_json::to_vec(&request).unwrap();
        let read: Request<'_> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (read.task, read.attempt, read.items.len()),
            ("app::f", 2, 1)
        );
        assert_eq!(decode_bytes(read.items[0]).unwrap(), b"\x91\x07");
        assert!(decode_bytes("not base64!").is_err());
    }

    #[test]
    fn the_build_identity_is_the_same_on_every_call() {
        assert_eq!(build_identity(), build_identity());
        assert!(build_identity().starts_with("exe-"), "{}", build_identity());
    }
}
