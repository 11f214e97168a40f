//! W1 and W1b: many tiny tasks.

use std::hint::black_box;

use lambda_parallel::Pool;
use rayon::prelude::*;

use crate::support::raw::EchoChild;
use crate::support::report::{Figure, Row};
use crate::{check, time, Config, Result};

pub(crate) const W1_TASKS: u64 = 100_000;
const W1B_ROUND_TRIPS: u64 = 10_000;

pub(crate) fn square(x: u64) -> u64 {
    x * x
}

pub(crate) fn w1_map(config: &Config) -> Result<Vec<Row>> {
    let pool = Pool::new(2)?;
    let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    let expected: Vec<u64> = (0..W1_TASKS).map(square).collect();
    let (mut ours, mut serial, mut parallel, mut streamed) = (
        Figure::default(),
        Figure::default(),
        Figure::default(),
        Figure::default(),
    );
    let per_task = |secs: f64| secs * 1e9 / W1_TASKS as f64;
    // One unmeasured round first: the first call pays for page faults the others do not.
    for rep in 0..=config.reps(25) {
        let (secs, results) = time(|| pool.map(square, 0..W1_TASKS));
        check(results? == expected, "W1 pool")?;
        let record = |figure: &mut Figure, secs| (rep > 0).then(|| figure.push(per_task(secs)));
        record(&mut ours, secs);
        let (secs, results) = time(|| (0..black_box(W1_TASKS)).map(square).collect::<Vec<_>>());
        check(results == expected, "W1 serial")?;
        record(&mut serial, secs);
        let (secs, results) = time(|| {
            threads.install(|| {
                (0..black_box(W1_TASKS))
                    .into_par_iter()
                    .map(square)
                    .collect::<Vec<_>>()
            })
        });
        check(results == expected, "W1 threads")?;
        record(&mut parallel, secs);
        let (secs, results) = time(|| {
            pool.imap(square, 0..W1_TASKS)
                .collect::<Result<Vec<_>, _>>()
        });
        check(results? == expected, "W1 imap")?;
        record(&mut streamed, secs);
    }
    let (met, held) = (ours.median() <= 30.0, ours.median() <= 100.0);
    // Streaming within 2x of map per item (#15).
    let streamed_met = streamed.median() <= 2.0 * ours.median();
    let measured = "100k square() via map, ns/task";
    Ok(vec![
        Row {
            id: "W1",
            measured: measured.into(),
            ours: ours.clone(),
            baseline: Some(("serial", serial)),
            target: "≤ 30 ns",
            met: Some(met),
            kept: "≤ 100 ns",
            held: Some(held),
        },
        Row {
            id: "W1",
            measured: measured.into(),
            ours: ours.clone(),
            baseline: Some(("threads", parallel)),
            target: "",
            met: None,
            kept: "",
            held: None,
        },
        Row {
            id: "W1",
            measured: "100k square() via imap, ns/task".into(),
            ours: streamed,
            baseline: Some(("map", ours)),
            target: "≤ 2× map",
            met: Some(streamed_met),
            kept: "",
            held: None,
        },
    ])
}

pub(crate) fn w1b_round_trip(config: &Config) -> Result<Vec<Row>> {
    let pool = Pool::new(2)?;
    let mut raw = EchoChild::spawn(8, None)?;
    let (mut ours, mut baseline) = (Figure::default(), Figure::default());
    let per_trip = |secs: f64| secs * 1e6 / W1B_ROUND_TRIPS as f64;
    for rep in 0..=config.reps(21) {
        let (secs, sum) = time(|| {
            (0..W1B_ROUND_TRIPS).try_fold(0_u64, |sum, x| {
                Ok::<_, lambda_parallel::Error>(sum + pool.apply(square, (x,))?)
            })
        });
        check(
            sum? == (0..W1B_ROUND_TRIPS).map(square).sum::<u64>(),
            "W1b pool",
        )?;
        let (raw_secs, sum) = time(|| {
            let mut reply = [0_u8; 8];
            (0..W1B_ROUND_TRIPS).try_fold(0_u64, |sum, x| {
                raw.round_trip(&x.to_le_bytes(), &mut reply)?;
                Ok::<_, std::io::Error>(sum + u64::from_le_bytes(reply))
            })
        });
        check(sum? == (0..W1B_ROUND_TRIPS).sum::<u64>(), "W1b raw")?;
        if rep > 0 {
            ours.push(per_trip(secs));
            baseline.push(per_trip(raw_secs));
        }
    }
    Ok(vec![Row {
        id: "W1b",
        measured: "10k sequential apply(), µs/round trip".into(),
        met: Some(ours.median() <= 1.5),
        held: Some(ours.median() <= 6.0),
        ours,
        baseline: Some(("raw pipe", baseline)),
        target: "≤ 1.5 µs",
        kept: "≤ 6 µs",
    }])
}
