//! W4, W5 and W5b: starting and ending processes.

use std::hint::black_box;

use lambda_parallel::{lambda_parallel, Pool};

use super::tiny::square;
use crate::support::raw::{self, EchoChild};
use crate::support::report::{Figure, Row};
use crate::{check, time, Config, Result};

pub(crate) fn w4_pool_lifetime(config: &Config) -> Result<Vec<Row>> {
    let (mut ours, mut baseline) = (Figure::default(), Figure::default());
    for rep in 0..=config.reps(51) {
        let (secs, result) = time(|| {
            let pool = Pool::new(2)?;
            pool.apply(square, (3,))
            // The pool drops here: its workers are killed and reaped, inside the clock.
        });
        check(result? == 9, "W4 pool")?;
        let (raw_secs, reply) = time(|| {
            let mut first = EchoChild::spawn(8, None)?;
            let _second = EchoChild::spawn(8, None)?;
            let mut reply = [0_u8; 8];
            first.round_trip(&3_u64.to_le_bytes(), &mut reply)?;
            Ok::<_, std::io::Error>(reply)
        });
        check(reply? == 3_u64.to_le_bytes(), "W4 raw")?;
        if rep > 0 {
            ours.push(secs * 1e3);
            baseline.push(raw_secs * 1e3);
        }
    }
    Ok(vec![Row {
        id: "W4",
        measured: "new pool(2) + 1 task + drop, ms".into(),
        met: Some(ours.median() <= 0.5 && ours.median() <= 1.2 * baseline.median()),
        held: Some(ours.median() <= 1.0),
        ours,
        baseline: Some(("raw fork×2", baseline)),
        target: "≤ 0.5 ms, ≤ 1.2× raw",
        kept: "≤ 1 ms",
    }])
}

/// W5's task.
#[lambda_parallel]
fn increment(x: u64) -> u64 {
    x + 1
}

/// Our figure and the raw fork's, for `reps` one-off workers, in `unit`s of a second.
fn spawn_join(reps: usize, unit: f64) -> Result<(Figure, Figure)> {
    let (mut ours, mut baseline) = (Figure::default(), Figure::default());
    for rep in 0..=reps {
        let (secs, result) = time(|| increment::spawn(41)?.join());
        check(result? == 42, "W5 spawn")?;
        let (raw_secs, result) = time(|| raw::fork_write_wait(41));
        check(result? == 42, "W5 raw")?;
        if rep > 0 {
            ours.push(secs * unit);
            baseline.push(raw_secs * unit);
        }
    }
    Ok((ours, baseline))
}

pub(crate) fn w5_spawn(config: &Config) -> Result<Vec<Row>> {
    let (ours, baseline) = spawn_join(config.reps(301), 1e6)?;
    Ok(vec![Row {
        id: "W5",
        measured: "spawn().join() of a trivial fn, µs".into(),
        met: Some(ours.median() <= 100.0 && ours.median() <= 0.6 * baseline.median()),
        held: Some(ours.median() <= 150.0),
        ours,
        baseline: Some(("raw fork", baseline)),
        target: "≤ 100 µs, ≤ 0.6× raw",
        kept: "≤ 150 µs",
    }])
}

pub(crate) fn w5b_spawn_big_parent(config: &Config) -> Result<Vec<Row>> {
    const HEAP: usize = 1 << 30;
    let mut heap: Vec<u8> = Vec::new();
    if heap.try_reserve_exact(HEAP).is_err() {
        return Err("W5b: cannot allocate 1 GiB (run it on a machine with the memory)".into());
    }
    // Writing every byte makes every page resident: the page tables a fork copies.
    heap.resize(HEAP, 1);
    black_box(&heap);
    let (ours, baseline) = spawn_join(config.reps(15), 1e3)?;
    drop(heap);
    Ok(vec![Row {
        id: "W5b",
        measured: "W5 with 1 GiB touched heap, ms".into(),
        met: Some(ours.median() <= 0.3),
        held: Some(ours.median() <= 1.0),
        ours,
        baseline: Some(("raw fork", baseline)),
        target: "≤ 0.3 ms (fork server)",
        kept: "≤ 1 ms",
    }])
}
