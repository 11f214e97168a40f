//! W7: a Lambda batch end to end, as Lambda users run one: an `SqsEvent` of 1,000 records with
//! JSON bodies of about 1 KiB, each body parsed and its password hashed (PBKDF2-HMAC-SHA256,
//! 1,000 rounds), through the batch-processing layer (`lambda::BatchProcessor`) on 2 workers,
//! producing the `SqsBatchResponse`; against the same in a serial loop and on rayon's 2
//! threads (`serde_json` and the same PBKDF2, then the response). The batch layer needs the
//! `lambda` feature: `cargo bench --bench pool --features lambda`; without it, the rows say so.

#[cfg(not(feature = "lambda"))]
use crate::support::report::{Figure, Row};
#[cfg(not(feature = "lambda"))]
use crate::{Config, Result};

const MEASURED: &str = "1,000 SQS records (1 KiB JSON, PBKDF2 1k) via BatchProcessor, records/s";
const TARGET: &str = "≥ 1.85× serial, ≥ 0.95× threads";

#[cfg(feature = "lambda")]
pub(crate) use self::enabled::w7_lambda_batch;

#[cfg(feature = "lambda")]
mod enabled {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use lambda_parallel::lambda::aws_lambda_events::sqs::{
        BatchItemFailure, SqsBatchResponse, SqsEvent,
    };
    use lambda_parallel::lambda::lambda_runtime::Context;
    use lambda_parallel::lambda::lambda_runtime::LambdaEvent;
    use lambda_parallel::lambda::{self, BatchProcessor};
    use lambda_parallel::{lambda_parallel, Pool};
    use rayon::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::{MEASURED, TARGET};
    use crate::support::report::{Figure, Row};
    use crate::{check, time, Config, Result};

    /// Records in the batch.
    const RECORDS: usize = 1_000;
    /// PBKDF2 rounds a record.
    const ROUNDS: u32 = 1_000;

    /// A record's body: who signs up, their password, and the rest of a realistic event.
    #[derive(Serialize, Deserialize)]
    struct SignUp {
        password: String,
        salt: String,
        #[allow(dead_code, reason = "parsed, as a handler would, and not used")]
        profile: serde_json::Value,
    }

    fn hash(sign_up: &SignUp) -> [u8; 32] {
        let mut key = [0_u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
            sign_up.password.as_bytes(),
            sign_up.salt.as_bytes(),
            ROUNDS,
            &mut key,
        );
        key
    }

    /// Ok with the key, as a handler's function answers: a record's `Err` is its failure.
    #[lambda_parallel]
    #[allow(
        clippy::unnecessary_wraps,
        reason = "a record's function answers with a Result"
    )]
    fn hash_sign_up(sign_up: SignUp) -> std::result::Result<[u8; 32], String> {
        Ok(hash(&sign_up))
    }

    /// What the serial and threads columns do for a record: what the batch layer does, less
    /// the processes.
    fn by_hand(body: &str) -> std::result::Result<[u8; 32], String> {
        let sign_up: SignUp = serde_json::from_str(body).map_err(|err| err.to_string())?;
        Ok(hash(&sign_up))
    }

    /// The partial batch response for `outcomes`, in record order.
    fn respond(outcomes: &[std::result::Result<[u8; 32], String>]) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for (i, outcome) in outcomes.iter().enumerate() {
            if outcome.is_err() {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = format!("m{i}");
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// A context whose deadline is a quarter of an hour away.
    fn context() -> Context {
        let mut context = Context::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        context.deadline = u64::try_from(now.as_millis()).unwrap_or(u64::MAX) + 900_000;
        context
    }

    /// The event, and its records' bodies.
    fn event() -> Result<(SqsEvent, Vec<String>)> {
        let bodies: Vec<String> = (0..RECORDS).map(body).collect();
        let records: Vec<serde_json::Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                serde_json::json!({
                    "messageId": format!("m{i}"),
                    "body": body,
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sign-ups",
                })
            })
            .collect();
        let event = serde_json::from_value(serde_json::json!({ "Records": records }))?;
        Ok((event, bodies))
    }

    pub(crate) fn w7_lambda_batch(config: &Config) -> Result<Vec<Row>> {
        let (event, bodies) = event()?;
        let processor = BatchProcessor::new(Pool::new(2)?);
        let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let per_second = |secs: f64| RECORDS as f64 / secs;
        let [mut ours, mut serial, mut parallel] = std::array::from_fn(|_| Figure::default());
        for rep in 0..=config.reps(7) {
            let (secs, response) = time(|| {
                let event = LambdaEvent::new(event.clone(), context());
                runtime.block_on(processor.sqs(event, lambda::json, hash_sign_up))
            });
            check(response?.batch_item_failures.is_empty(), "W7 batch")?;
            let (serial_secs, outcomes) =
                time(|| bodies.iter().map(|body| by_hand(body)).collect::<Vec<_>>());
            check(
                respond(&outcomes).batch_item_failures.is_empty(),
                "W7 serial",
            )?;
            let (threads_secs, outcomes) = time(|| {
                threads.install(|| {
                    bodies
                        .par_iter()
                        .map(|body| by_hand(body))
                        .collect::<Vec<_>>()
                })
            });
            check(
                respond(&outcomes).batch_item_failures.is_empty(),
                "W7 threads",
            )?;
            if rep > 0 {
                ours.push(per_second(secs));
                serial.push(per_second(serial_secs));
                parallel.push(per_second(threads_secs));
            }
        }
        let met =
            ours.median() >= 1.85 * serial.median() && ours.median() >= 0.95 * parallel.median();
        Ok(vec![
            Row {
                id: "W7",
                measured: MEASURED.into(),
                ours: ours.clone(),
                baseline: Some(("serial", serial)),
                target: TARGET,
                met: Some(met),
                kept: "",
                held: None,
            },
            Row {
                id: "W7",
                measured: MEASURED.into(),
                ours,
                baseline: Some(("threads", parallel)),
                target: "",
                met: None,
                kept: "",
                held: None,
            },
        ])
    }

    /// Record `i`'s body: about 1 KiB of JSON, as the Python peers build it too.
    fn body(i: usize) -> String {
        let padding = "x".repeat(880);
        format!(
            r#"{{"password":"correct horse {i}","salt":"salt-{i}","profile":{{"id":{i},"name":"user {i}","tags":["a","b","c"],"bio":"{padding}"}}}}"#
        )
    }
}

/// Without the feature, the rows are there and say how to get them.
#[cfg(not(feature = "lambda"))]
#[allow(clippy::unnecessary_wraps, reason = "the signature of every workload")]
pub(crate) fn w7_lambda_batch(_: &Config) -> Result<Vec<Row>> {
    let why = "needs `--features lambda`";
    Ok(vec![Row {
        id: "W7",
        measured: MEASURED.into(),
        ours: Figure::failed(why),
        baseline: Some(("serial", Figure::failed(why))),
        target: TARGET,
        met: None,
        kept: "",
        held: None,
    }])
}
