//! W2 and W6: large values, and memory.

use lambda_parallel::Pool;

use crate::support::memory;
use crate::support::raw::EchoChild;
use crate::support::report::{Figure, Row};
use crate::{check, time, Config, Result};

const MIB: usize = 1 << 20;
pub(crate) const W2_TASKS: usize = 64;

pub(crate) fn echo(value: Vec<u8>) -> Vec<u8> {
    value
}

/// One task's payload: 1 MiB of a pattern that a misplaced byte would break.
pub(crate) fn payload() -> Vec<u8> {
    (0..=250).cycle().take(MIB).collect()
}

pub(crate) fn w2_throughput(config: &Config) -> Result<Vec<Row>> {
    let pool = Pool::new(2)?;
    let mut raw = EchoChild::spawn(MIB, Some(1 << 20))?;
    let payload = payload();
    let mut reply = vec![0_u8; MIB];
    let (mut ours, mut baseline) = (Figure::default(), Figure::default());
    let moved = (2 * W2_TASKS) as f64;
    for rep in 0..=config.reps(21) {
        let inputs = vec![payload.clone(); W2_TASKS];
        let (secs, results) = time(|| pool.map(echo, inputs));
        let results = results?;
        check(
            results.len() == W2_TASKS && results.iter().all(|r| *r == payload),
            "W2 pool",
        )?;
        drop(results);
        let (raw_secs, echoed) =
            time(|| (0..W2_TASKS).try_for_each(|_| raw.round_trip(&payload, &mut reply)));
        echoed?;
        check(reply == payload, "W2 raw")?;
        if rep > 0 {
            ours.push(moved / secs);
            baseline.push(moved / raw_secs);
        }
    }
    let met = ours.median() >= 0.9 * baseline.median();
    let held = ours.median() >= 1500.0 && ours.median() >= 0.75 * baseline.median();
    Ok(vec![Row {
        id: "W2",
        measured: "64 × 1 MiB echo() via map, MiB/s".into(),
        ours,
        baseline: Some(("raw pipe", baseline)),
        target: "≥ 0.9× raw",
        met: Some(met),
        kept: "≥ 1500, ≥ 0.75× raw",
        held: Some(held),
    }])
}

pub(crate) fn w6_memory(config: &Config) -> Result<Vec<Row>> {
    // Each idle worker of a fresh pool, next to an idle raw child forked at the same moment.
    let (mut workers, mut raw_children) = (Figure::default(), Figure::default());
    for _ in 0..config.reps(5) {
        let pool = Pool::new(2)?;
        let raw = EchoChild::spawn(8, None)?;
        for pid in pool.pids().into_iter().chain([raw.pid()]) {
            if !memory::wait_until_idle(pid)? {
                return Err(format!("W6: process {pid} did not become idle").into());
            }
        }
        for pid in pool.pids() {
            workers.push(memory::uss_kib(pid)? as f64 / 1024.0);
        }
        raw_children.push(memory::uss_kib(raw.pid())? as f64 / 1024.0);
    }
    let (met, held) = (workers.median() <= 1.0, workers.median() <= 2.0);
    let mut rows = vec![Row {
        id: "W6",
        measured: "USS of an idle pool worker, MiB".into(),
        ours: workers,
        baseline: Some(("raw child", raw_children)),
        target: "≤ 1 MiB",
        met: Some(met),
        kept: "≤ 2 MiB",
        held: Some(held),
    }];

    // An idle pool burns no CPU: its workers, and the caller's thread, over 10 s (1 s with
    // `--quick`) after a task, in milliseconds of CPU (the clock's grain is 10 ms).
    let pool = Pool::new(2)?;
    check(pool.map(echo, vec![vec![1_u8]; 2])?.len() == 2, "W6 idle")?;
    let idle = std::time::Duration::from_secs(if config.quick { 1 } else { 10 });
    let used = || -> Result<u64> {
        let mut total = memory::cpu_ms("/proc/thread-self/stat")?;
        for pid in pool.pids() {
            total += memory::cpu_ms(&format!("/proc/{pid}/stat"))?;
        }
        Ok(total)
    };
    let before = used()?;
    std::thread::sleep(idle);
    let burnt = used()? - before;
    let mut idle_cpu = Figure::default();
    idle_cpu.push(burnt as f64);
    rows.push(Row {
        id: "W6",
        measured: format!("CPU of an idle 2-worker pool over {} s, ms", idle.as_secs()),
        ours: idle_cpu,
        baseline: None,
        target: "0",
        met: Some(burnt == 0),
        kept: "",
        held: None,
    });

    // The parent's peak RSS during W2's call, against the task data in flight.
    let pool = Pool::new(2)?;
    let payload = payload();
    let in_flight = (W2_TASKS * MIB) as f64 / MIB as f64;
    let (mut peaks, mut flight) = (Figure::default(), Figure::default());
    let resettable = memory::reset_peak_rss();
    for _ in 0..if resettable { config.reps(3) } else { 1 } {
        memory::reset_peak_rss();
        let inputs = vec![payload.clone(); W2_TASKS];
        let results = pool.map(echo, inputs)?;
        peaks.push(memory::own_status_kib("VmHWM:")? as f64 / 1024.0);
        flight.push(in_flight);
        check(results.iter().all(|r| *r == payload), "W6 pool")?;
    }
    let (met, held) = (
        peaks.median() <= 1.5 * in_flight,
        peaks.median() <= 3.0 * in_flight,
    );
    rows.push(Row {
        id: "W6",
        measured: if resettable {
            "parent peak RSS in W2, MiB".into()
        } else {
            "parent peak RSS in W2 (process peak), MiB".into()
        },
        ours: peaks,
        baseline: Some(("in flight", flight)),
        target: "≤ 1.5× in flight",
        met: Some(met),
        kept: "≤ 3× in flight",
        held: Some(held),
    });
    Ok(rows)
}
