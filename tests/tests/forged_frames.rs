//! A worker is untrusted input: whatever bytes its own code writes to its result channel, the
//! caller gets an error for that task (or, where the pool saw the task's outcome before the
//! bytes, for no task: the worker is retired before it gets another), never a hang, an abort or
//! an allocation the bytes do not back; and the pool replaces the worker and goes on. (Issue
//! #11, cases 2, 12 and 13.)
//!
//! The checks run one after another, in a binary of their own (no test harness): a worker finds
//! its result pipe among its descriptors, and a sibling forked at the same moment by another
//! test's thread could hold a copy of a new worker's pipe for an instant.

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::checks::{run, Check};
use lambda_parallel_tests::forge::{header, random_bytes, write_raw, VALUE};

/// Writes the first four bytes of a frame header, then returns normally.
#[lambda_parallel]
fn partial_header_then_return() -> u32 {
    write_raw(&header(VALUE, 3)[..4]);
    7
}

/// Writes pseudo-random bytes, then returns normally.
#[lambda_parallel]
fn random_bytes_then_return(seed: u64) -> u32 {
    write_raw(&random_bytes(seed, 64));
    7
}

/// Writes a true header that claims `len` bytes, and a few of them, then exits.
#[lambda_parallel]
fn huge_header_then_exit(len: u64) -> u32 {
    let mut frame = header(VALUE, len).to_vec();
    frame.extend_from_slice(&[0xc1; 100]);
    write_raw(&frame);
    std::process::exit(0)
}

fn square(x: u64) -> u64 {
    x * x
}

fn goes_on(pool: &Pool) {
    let squares: Vec<u64> = (0..1000).map(|x| x * x).collect();
    assert_eq!(pool.map(square, 0..1000).unwrap(), squares);
}

fn resident_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib >> 10
}

fn partial_header_and_a_normal_return_fail_the_task_and_the_pool_goes_on() {
    // A new worker's outcomes start on its pipe, after the four stray bytes.
    let pool = Pool::new(1).unwrap();
    let pid = pool.pids();
    let err = pool.apply(partial_header_then_return, ()).unwrap_err();
    assert!(err.is_bad_frame(), "{err}");
    assert_eq!(err.task_index(), Some(0));
    assert_ne!(pool.pids(), pid, "the worker was replaced");
    goes_on(&pool);
}

fn stray_bytes_while_the_ring_has_the_turn_retire_the_worker() {
    let pool = Pool::new(1).unwrap();
    // After one outcome, the worker's outcomes go to its ring, and the stray bytes to the
    // pipe, which the pool reads when `poll` says so: the task's own outcome may then come
    // first. The pool looks at the pipe before the worker gets more work, so no other task
    // fails for them.
    assert_eq!(pool.apply(|x: u32| x + 1, (1,)).unwrap(), 2);
    let pid = pool.pids();
    if let Err(err) = pool.apply(partial_header_then_return, ()) {
        assert!(err.is_bad_frame(), "{err}");
    }
    let squares: Vec<u64> = (0..100).map(|x| x * x).collect();
    assert_eq!(pool.map(square, 0..100).unwrap(), squares);
    assert_ne!(pool.pids(), pid, "the worker was retired");
    // And the same with two workers, the other of which goes on, and a stream of tasks
    // between the rounds.
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..1000).unwrap().len(), 1000);
    let squares: Vec<u64> = (0..1000).map(|x| x * x).collect();
    for round in 0..20 {
        let before = pool.pids();
        if let Err(err) = pool.apply(partial_header_then_return, ()) {
            assert!(err.is_bad_frame(), "round {round}: {err}");
        }
        assert_eq!(pool.map(square, 0..1000).unwrap(), squares, "round {round}");
        let kept = pool
            .pids()
            .iter()
            .filter(|pid| before.contains(pid))
            .count();
        assert_eq!(kept, 1, "round {round}: {before:?}, then {:?}", pool.pids());
    }
    goes_on(&pool);
}

fn random_bytes_and_a_normal_return_fail_the_task_and_the_pool_goes_on() {
    for seed in 0..20 {
        let pool = Pool::new(1).unwrap();
        let err = pool.apply(random_bytes_then_return, (seed,)).unwrap_err();
        assert!(err.is_bad_frame(), "seed {seed}: {err}");
        goes_on(&pool);
    }
}

fn a_header_claiming_more_than_ever_comes_is_a_bad_frame_and_costs_no_memory() {
    let before = resident_mib();
    for len in [1 << 32, 1 << 59, u64::MAX] {
        let pool = Pool::new(1).unwrap();
        let err = pool.apply(huge_header_then_exit, (len,)).unwrap_err();
        assert!(err.is_bad_frame(), "{len}: {err}");
        goes_on(&pool);
        let err = huge_header_then_exit::spawn(len)
            .unwrap()
            .join()
            .unwrap_err();
        assert!(err.is_bad_frame(), "{len}: {err}");
    }
    // Other tests run beside this one, so the bound is loose; what it rules out is memory
    // sized by the forged lengths (4 GiB and more).
    assert!(
        resident_mib() < before + 256,
        "{before} MiB before, {} after",
        resident_mib()
    );
}

fn one_off_workers_report_stray_bytes_as_a_bad_frame() {
    let err = partial_header_then_return::spawn()
        .unwrap()
        .join()
        .unwrap_err();
    assert!(err.is_bad_frame(), "{err}");
    for seed in 0..10 {
        let err = random_bytes_then_return::spawn(seed)
            .unwrap()
            .join()
            .unwrap_err();
        assert!(err.is_bad_frame(), "seed {seed}: {err}");
    }
}

/// Runs a check written with assertions, as a check that returns why it failed.
fn asserting(check: fn()) -> Result<(), String> {
    std::panic::catch_unwind(check).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

fn main() {
    let checks: [Check; 5] = [
        (
            "partial header and a normal return fail the task, and the pool goes on",
            || asserting(partial_header_and_a_normal_return_fail_the_task_and_the_pool_goes_on),
        ),
        (
            "stray bytes while the ring has the turn retire the worker",
            || asserting(stray_bytes_while_the_ring_has_the_turn_retire_the_worker),
        ),
        (
            "random bytes and a normal return fail the task, and the pool goes on",
            || asserting(random_bytes_and_a_normal_return_fail_the_task_and_the_pool_goes_on),
        ),
        (
            "a header claiming more than ever comes is a bad frame and costs no memory",
            || asserting(a_header_claiming_more_than_ever_comes_is_a_bad_frame_and_costs_no_memory),
        ),
        ("one-off workers report stray bytes as a bad frame", || {
            asserting(one_off_workers_report_stray_bytes_as_a_bad_frame)
        }),
    ];
    run("forged_frames", &checks);
}
