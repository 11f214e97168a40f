//! What the batch layer knows of each event source's records (their identifiers, bodies and
//! FIFO groups), the decoders that turn a record into a worker's input, and what a record
//! function may return. All of it runs in the caller's process, before and after the pool.

use std::fmt;

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::kinesis::KinesisEventRecord;
use aws_lambda_events::sqs::SqsMessage;
use serde::de::DeserializeOwned;

/// A record of a batch event: an SQS message, a Kinesis record or a DynamoDB stream record.
///
/// Implemented for [`SqsMessage`], [`KinesisEventRecord`] and DynamoDB's [`EventRecord`]; sealed.
pub trait Record: sealed::Sealed {
    /// What Lambda expects in `batchItemFailures` for this record: an SQS message's id, or a
    /// stream record's sequence number. Empty when the event lacks it.
    fn item_identifier(&self) -> &str;
}

/// A [`Record`] that carries a payload of its own: an SQS message's body, a Kinesis record's
/// data (base64-decoded). DynamoDB stream records have images instead, which a decoder of the
/// user's reads.
pub trait HasBody: Record {
    /// The payload's bytes (empty when there is none).
    fn body_bytes(&self) -> &[u8];
}

mod sealed {
    /// Implemented exactly where [`Record`](super::Record) is.
    #[allow(
        unreachable_pub,
        reason = "the sealed-trait pattern: public, so that it can bound a public trait, in a \
                  module nobody outside can name"
    )]
    pub trait Sealed {}
}

impl sealed::Sealed for SqsMessage {}
impl sealed::Sealed for KinesisEventRecord {}
impl sealed::Sealed for EventRecord {}

impl Record for SqsMessage {
    fn item_identifier(&self) -> &str {
        self.message_id.as_deref().unwrap_or_default()
    }
}

impl HasBody for SqsMessage {
    fn body_bytes(&self) -> &[u8] {
        self.body.as_deref().unwrap_or_default().as_bytes()
    }
}

impl Record for KinesisEventRecord {
    fn item_identifier(&self) -> &str {
        &self.kinesis.sequence_number
    }
}

impl HasBody for KinesisEventRecord {
    fn body_bytes(&self) -> &[u8] {
        &self.kinesis.data
    }
}

impl Record for EventRecord {
    fn item_identifier(&self) -> &str {
        self.change.sequence_number.as_deref().unwrap_or_default()
    }
}

/// The message group of an SQS message from a FIFO queue (its `.fifo` ARN says so), else none.
pub(crate) fn fifo_group(message: &SqsMessage) -> Option<&str> {
    let fifo = message
        .event_source_arn
        .as_deref()
        // The suffix is part of the queue's name, in lowercase: SQS requires it exactly so.
        .is_some_and(|arn| arn.strip_suffix(".fifo").is_some());
    fifo.then(|| message.attributes.get("MessageGroupId"))
        .flatten()
        .map(String::as_str)
}

/// A record whose payload could not be decoded into the worker's input: that record's failure.
#[derive(Debug)]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    /// An error with the given message, for decoders of the user's own.
    pub fn new(message: impl fmt::Display) -> Self {
        DecodeError {
            message: message.to_string(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a record's body as JSON into `T`: the input for a record function that takes `T`.
///
/// # Errors
///
/// When the body is not JSON of `T`'s shape; the record then fails without running.
pub fn json<T: DeserializeOwned>(record: &impl HasBody) -> Result<T, DecodeError> {
    serde_json::from_slice(record.body_bytes())
        .map_err(|err| DecodeError::new(format_args!("the body is not the JSON expected: {err}")))
}

/// A record's body as a `String`, for a record function that parses it itself.
///
/// # Errors
///
/// When the body is not UTF-8 (a Kinesis record's data can be anything).
pub fn body(record: &impl HasBody) -> Result<String, DecodeError> {
    String::from_utf8(record.body_bytes().to_vec())
        .map_err(|err| DecodeError::new(format_args!("the body is not UTF-8: {err}")))
}

/// A record's body as bytes, for binary Kinesis data.
///
/// # Errors
///
/// Never; the `Result` lets it stand where [`json`] and [`body`] do.
pub fn bytes(record: &impl HasBody) -> Result<Vec<u8>, DecodeError> {
    Ok(record.body_bytes().to_vec())
}

/// What a record function returns: `()`, or a `Result` whose `Err` fails the record.
///
/// A record also fails when its worker panics, crashes, exits or runs past the deadline; those
/// need no return value to say so.
pub trait RecordOutcome {
    /// Why the record failed, if it did.
    fn failure(&self) -> Option<String>;
}

impl RecordOutcome for () {
    fn failure(&self) -> Option<String> {
        None
    }
}

impl<T, E: fmt::Display> RecordOutcome for Result<T, E> {
    fn failure(&self) -> Option<String> {
        self.as_ref().err().map(ToString::to_string)
    }
}
