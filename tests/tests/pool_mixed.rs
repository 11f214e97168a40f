//! Thousands of tasks mixing values, typed errors, panics, crashes and timeouts, through several
//! pools and entry points: every task yields exactly one outcome, of the kind it asked for, and
//! nothing outlives the pools.
//!
//! The mix comes from a seeded generator rather than proptest: each case forks, kills and
//! waits on real processes, so shrinking (which reruns the case many times) would cost minutes,
//! and the before/after count of processes and descriptors needs one test spanning every case
//! anyway. The seed is printed with any failure; set `LAMBDA_PARALLEL_SEED` to replay it or to
//! explore others.
//!
//! One test in this binary, so that no other test opens files or forks while it counts.

use std::time::Duration;

use lambda_parallel::{lambda_parallel, Error, Pool};
use lambda_parallel_tests::{children, open_fds};
use serde::{Deserialize, Serialize};

/// What a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Value,
    TypedErr,
    Panic,
    Abort,
    Exit,
    /// Sleeps far past the task timeout.
    Stuck,
}

#[lambda_parallel]
fn act(kind: Kind, x: u32) -> Result<u32, String> {
    match kind {
        Kind::Value => Ok(x.wrapping_mul(3)),
        Kind::TypedErr => Err(format!("refused {x}")),
        Kind::Panic => panic!("panicked {x}"),
        Kind::Abort => std::process::abort(),
        Kind::Exit => std::process::exit(3),
        Kind::Stuck => {
            std::thread::sleep(Duration::from_secs(600));
            Ok(x)
        }
    }
}

/// `SplitMix64`: small, seedable, and good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn kind(&mut self, stuck_left: &mut u32) -> Kind {
        match self.below(1000) {
            0..=799 => Kind::Value,
            800..=879 => Kind::TypedErr,
            880..=939 => Kind::Panic,
            940..=964 => Kind::Abort,
            965..=989 => Kind::Exit,
            _ if *stuck_left > 0 => {
                *stuck_left -= 1;
                Kind::Stuck
            }
            _ => Kind::Value,
        }
    }
}

/// Whether `outcome` is what a task of `kind` on `x`, the `index`-th of its call, must yield.
fn check(kind: Kind, x: u32, index: usize, outcome: &Result<Result<u32, String>, Error>) -> bool {
    match (kind, outcome) {
        (Kind::Value, Ok(Ok(value))) => *value == x.wrapping_mul(3),
        (Kind::TypedErr, Ok(Err(message))) => *message == format!("refused {x}"),
        (_, Err(err)) if err.task_index() != Some(index) => false,
        (Kind::Panic, Err(err)) => err.panic_message() == Some(&*format!("panicked {x}")),
        (Kind::Abort, Err(err)) => err.signal_name() == Some("SIGABRT"),
        (Kind::Exit, Err(err)) => err.exit_code() == Some(3),
        (Kind::Stuck, Err(err)) => err.is_timeout(),
        (_, Ok(_)) | (Kind::Value | Kind::TypedErr, Err(_)) => false,
    }
}

/// Runs `tasks` through `pool` by one of the entry points; one outcome per task, by index.
fn run(
    pool: &Pool,
    entry: u64,
    tasks: &[(Kind, u32)],
    rng: &mut Rng,
) -> Vec<Option<Result<Result<u32, String>, Error>>> {
    let mut outcomes: Vec<Option<_>> = tasks.iter().map(|_| None).collect();
    let mut record = |index: usize, outcome| {
        assert!(outcomes[index].is_none(), "task {index} had two outcomes");
        outcomes[index] = Some(outcome);
    };
    match entry {
        0 => {
            let each = pool.starmap_each(act, tasks.iter().copied());
            assert_eq!(each.len(), tasks.len(), "map_each: one outcome per task");
            each.into_iter()
                .enumerate()
                .for_each(|(i, outcome)| record(i, outcome));
        }
        1 => {
            let inputs = tasks.iter().copied();
            for (index, outcome) in pool.imap_unordered(|(k, x)| act(k, x), inputs) {
                record(index, outcome);
            }
        }
        2 => {
            let inputs = tasks.iter().copied();
            for (index, outcome) in pool.imap(|(k, x)| act(k, x), inputs).enumerate() {
                record(index, outcome);
            }
        }
        _ => {
            let handles: Vec<_> = tasks
                .iter()
                .map(|task| pool.apply_async(act, *task).unwrap())
                .collect();
            // Taken in an order of their own: first the odd ones, or last first.
            let mut handles: Vec<_> = handles.into_iter().enumerate().collect();
            if rng.below(2) == 0 {
                handles.reverse();
            } else {
                handles.sort_by_key(|(i, _)| i % 2 == 0);
            }
            for (index, handle) in handles {
                record(index, handle.get());
            }
        }
    }
    outcomes
}

#[test]
fn every_task_yields_exactly_one_outcome_of_its_kind() {
    let seed = std::env::var("LAMBDA_PARALLEL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Rng(seed);
    let fds = open_fds();
    let kids = children();

    let timeout = Duration::from_secs(1);
    let pools = [
        Pool::builder().workers(2).task_timeout(timeout).build(),
        Pool::builder()
            .workers(3)
            .chunk_size(4)
            .max_tasks_per_worker(25)
            .task_timeout(timeout)
            .build(),
        Pool::builder()
            .workers(2)
            .chunk_size(1)
            .task_timeout(timeout)
            .build(),
    ]
    .map(Result::unwrap);

    let mut stuck_left = 6;
    let mut kinds_run = [0_usize; 6];
    let mut total = 0;
    let mut call = 0;
    while total < 3_000 {
        let pool = &pools[usize::try_from(rng.below(3)).unwrap()];
        let entry = rng.below(4);
        let len = if entry == 3 {
            1 + rng.below(8)
        } else {
            1 + rng.below(200)
        };
        let tasks: Vec<(Kind, u32)> = (0..len)
            .map(|_| {
                (
                    rng.kind(&mut stuck_left),
                    u32::try_from(rng.below(1 << 20)).unwrap(),
                )
            })
            .collect();
        let outcomes = run(pool, entry, &tasks, &mut rng);
        for (index, ((kind, x), outcome)) in tasks.iter().zip(&outcomes).enumerate() {
            let outcome = outcome
                .as_ref()
                .unwrap_or_else(|| panic!("seed {seed}, call {call}: task {index} had no outcome"));
            kinds_run[*kind as usize] += 1;
            // apply_async numbers each call's one task 0.
            let index = if entry == 3 { 0 } else { index };
            assert!(
                check(*kind, *x, index, outcome),
                "seed {seed}, call {call} (entry {entry}): task {index}, {kind:?} on {x}, gave \
                 {outcome:?}"
            );
        }
        total += tasks.len();
        call += 1;
    }
    assert!(
        kinds_run.iter().all(|n| *n > 0),
        "seed {seed}: every kind ran: {kinds_run:?}"
    );
    for pool in &pools {
        assert_eq!(pool.pids().len(), pool.workers(), "seed {seed}: pool whole");
    }
    drop(pools);
    assert_eq!(children(), kids, "seed {seed}: every worker was reaped");
    assert_eq!(open_fds(), fds, "seed {seed}: every descriptor was closed");
}
