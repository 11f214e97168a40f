//! W8: the two codecs side by side, W1 and W2 with the default codec (`MessagePack`) and with
//! `#[lambda_parallel(codec = bincode)]`, repetition by repetition on one pool. bincode needs
//! the `bincode` feature: `cargo bench --bench pool --features bincode`; without it, the rows
//! say so.

use crate::support::report::{Figure, Row};
use crate::{Config, Result};

const MEASURED_W1: &str = "W1 (100k square() via map), ns/task: msgpack";
const MEASURED_W2: &str = "W2 (64 × 1 MiB echo() via map), MiB/s: msgpack";
const TARGET_W1: &str = "≤ 1.3× bincode";
const TARGET_W2: &str = "≥ 0.9× bincode";

#[cfg(feature = "bincode")]
pub(crate) fn w8_codecs(config: &Config) -> Result<Vec<Row>> {
    use lambda_parallel::{lambda_parallel, Pool};

    use super::{large, tiny};
    use crate::{check, time};

    #[lambda_parallel(codec = bincode)]
    fn square(x: u64) -> u64 {
        tiny::square(x)
    }

    #[lambda_parallel(codec = bincode)]
    fn echo(value: Vec<u8>) -> Vec<u8> {
        value
    }

    let pool = Pool::new(2)?;
    let expected: Vec<u64> = (0..tiny::W1_TASKS).map(tiny::square).collect();
    let [mut w1_default, mut w1_bincode, mut w2_default, mut w2_bincode] =
        std::array::from_fn(|_| Figure::default());
    let per_task = |secs: f64| secs * 1e9 / tiny::W1_TASKS as f64;
    // One unmeasured round first: the first call pays for page faults the others do not.
    for rep in 0..=config.reps(25) {
        let (default_secs, results) = time(|| pool.map(tiny::square, 0..tiny::W1_TASKS));
        check(results? == expected, "W8 W1 msgpack")?;
        let (bincode_secs, results) = time(|| pool.map(square::TASK, 0..tiny::W1_TASKS));
        check(results? == expected, "W8 W1 bincode")?;
        if rep > 0 {
            w1_default.push(per_task(default_secs));
            w1_bincode.push(per_task(bincode_secs));
        }
    }
    let payload = large::payload();
    let moved = (2 * large::W2_TASKS) as f64;
    for rep in 0..=config.reps(21) {
        let inputs = vec![payload.clone(); large::W2_TASKS];
        let (default_secs, results) = time(|| pool.map(large::echo, inputs));
        check(results?.iter().all(|r| *r == payload), "W8 W2 msgpack")?;
        let inputs = vec![payload.clone(); large::W2_TASKS];
        let (bincode_secs, results) = time(|| pool.map(echo::TASK, inputs));
        check(results?.iter().all(|r| *r == payload), "W8 W2 bincode")?;
        if rep > 0 {
            w2_default.push(moved / default_secs);
            w2_bincode.push(moved / bincode_secs);
        }
    }
    let w1_met = w1_default.median() <= 1.3 * w1_bincode.median();
    let w2_met = w2_default.median() >= 0.9 * w2_bincode.median();
    Ok(vec![
        Row {
            id: "W8",
            measured: MEASURED_W1.into(),
            ours: w1_default,
            baseline: Some(("bincode", w1_bincode)),
            target: TARGET_W1,
            met: Some(w1_met),
            kept: "",
            held: None,
        },
        Row {
            id: "W8",
            measured: MEASURED_W2.into(),
            ours: w2_default,
            baseline: Some(("bincode", w2_bincode)),
            target: TARGET_W2,
            met: Some(w2_met),
            kept: "",
            held: None,
        },
    ])
}

/// Without the feature, the rows are there and say how to get them.
#[cfg(not(feature = "bincode"))]
#[allow(clippy::unnecessary_wraps, reason = "the signature of every workload")]
pub(crate) fn w8_codecs(_: &Config) -> Result<Vec<Row>> {
    let why = "needs `--features bincode`";
    let row = |measured: &str, target| Row {
        id: "W8",
        measured: measured.into(),
        ours: Figure::failed(why),
        baseline: Some(("bincode", Figure::failed(why))),
        target,
        met: None,
        kept: "",
        held: None,
    };
    Ok(vec![
        row(MEASURED_W1, TARGET_W1),
        row(MEASURED_W2, TARGET_W2),
    ])
}
