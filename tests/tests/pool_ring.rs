//! A pool worker hands its outcomes over in a shared-memory ring while they fit, and on its pipe
//! when they do not (larger than the ring, or the pool has fallen behind). Whichever way they
//! come, every outcome reaches its task, once and in order; and a worker that scribbles over its
//! ring fails its own task, not the pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lambda_parallel::Pool;
use lambda_parallel_tests::{mark, pattern, wait_for, TempDir};

/// The ring's size (`runtime/src/ring.rs`): an outcome larger than this cannot use it.
const RING: usize = 256 << 10;

/// A pattern's seed for task `i`.
fn seed(i: u32) -> u8 {
    i.to_le_bytes()[0]
}

/// Task `i`'s value: every third one larger than the ring, the others a few bytes.
fn sized(i: u32) -> Vec<u8> {
    if i.is_multiple_of(3) {
        pattern(RING + 1000 + i as usize, seed(i))
    } else {
        pattern(i as usize % 50, seed(i))
    }
}

#[test]
fn outcomes_switch_between_the_ring_and_the_pipe_within_a_batch() {
    // One worker, one batch: each large outcome sends the worker to its pipe, and each small one
    // after it back to the ring, so every switch happens between two tasks of one batch.
    let pool = Pool::builder().workers(1).chunk_size(30).build().unwrap();
    let outcomes = pool.map(sized, 0..30).unwrap();
    assert_eq!(outcomes.len(), 30);
    for (i, outcome) in (0..).zip(&outcomes) {
        assert!(*outcome == sized(i), "task {i} has the wrong value");
    }
    // And again on the same worker, which now starts where the last call left it.
    assert_eq!(pool.map(sized, 1..3).unwrap(), [sized(1), sized(2)]);
}

/// A kilobyte for task `i`. The first task waits for `dir` to be marked `go`; task `mark_at`
/// marks it `reached`.
fn kilobyte(dir: &Path, mark_at: u32, i: u32) -> Vec<u8> {
    if i == 0 {
        assert!(wait_for(dir, "go", Duration::from_secs(60)), "no go");
    }
    if i == mark_at {
        mark(dir, "reached");
    }
    pattern(1000, seed(i))
}

#[test]
fn a_pool_that_falls_behind_loses_nothing() {
    // 600 outcomes of 1 KB, more than twice what the ring holds. `map_async` hands the batch to
    // the worker and returns, and nothing reads the worker's outcomes until `get`: the worker
    // fills its ring and waits for room. (Its first task waits until `map_async` has returned,
    // so that the pool reads nothing early; task 250 is the last whose outcome surely fits.)
    const TASKS: u32 = 600;
    let dir = TempDir::new("ring-behind");
    let pool = Pool::builder()
        .workers(1)
        .chunk_size(TASKS as usize)
        .build()
        .unwrap();
    let inputs = (0..TASKS).map(|i| (dir.path().to_owned(), 250, i));
    let pending = pool
        .map_async(
            |(dir, mark_at, i): (PathBuf, u32, u32)| kilobyte(&dir, mark_at, i),
            inputs,
        )
        .unwrap();
    mark(dir.path(), "go");
    assert!(wait_for(dir.path(), "reached", Duration::from_secs(60)));
    let outcomes = pending.get().unwrap();
    assert_eq!(outcomes.len(), TASKS as usize);
    for (i, outcome) in (0..TASKS).zip(&outcomes) {
        assert_eq!(*outcome, pattern(1000, seed(i)), "task {i}");
    }
    assert_eq!(
        pool.map(|x: u32| x + 1, 0..1000).unwrap(),
        (1..1001).collect::<Vec<u32>>()
    );
}

/// Overwrites the control block of every shared-memory ring mapped in this process (where the
/// ring's counters are) with `0xff` bytes, then crashes before the worker writes anything more.
fn scribble_over_the_ring() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut found = 0;
    for line in maps
        .lines()
        .filter(|line| line.contains("memfd:lambda-parallel"))
    {
        let start = line.split('-').next().unwrap();
        let start = usize::from_str_radix(start, 16).unwrap();
        // SAFETY: the mapping is this worker's ring, shared and writable, at least a page
        // long; nothing in this process holds a Rust reference into it. Writing garbage there
        // is the point: the pool must survive it.
        unsafe { std::ptr::write_bytes(start as *mut u8, 0xff, 4096) };
        found += 1;
    }
    assert_eq!(found, 1, "a pool worker maps exactly one ring");
    std::process::abort();
}

#[test]
fn a_worker_that_scribbles_over_its_ring_fails_its_task_and_the_pool_goes_on() {
    let pool = Pool::new(1).unwrap();
    let pid = pool.pids()[0];
    // A worker starts out on its pipe; after a small outcome, it uses its ring.
    assert_eq!(pool.apply(|x: u32| x + 1, (1,)).unwrap(), 2);
    let err = pool.apply(scribble_over_the_ring, ()).unwrap_err();
    // The pool reads the ring before it buries the worker, and finds nonsense there.
    assert!(err.is_bad_frame(), "{err}");
    assert_eq!(err.task_index(), Some(0));
    assert_ne!(pool.pids(), [pid], "the worker was replaced");
    assert_eq!(pool.map(|x: u32| x * 2, 0..100).unwrap().len(), 100);
}
