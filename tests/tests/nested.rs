//! A worker's own code may start workers: a one-off, or a pool of its own. Without `init`, a
//! worker is forked straight from the caller, while the caller holds the process-wide list of
//! workers' descriptors locked (so that no fork copies a worker's descriptors unlisted); the
//! child must not inherit that lock held, or its first worker hangs it.
//!
//! Each call is bounded, so that a hang fails the test instead of stalling the run.

use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};

/// Far above what any call here takes.
const HUNG: Duration = Duration::from_secs(20);

#[lambda_parallel]
fn double(x: u32) -> u32 {
    x * 2
}

/// Runs `double` in a one-off worker of its own.
#[lambda_parallel]
fn double_in_a_one_off(x: u32) -> u32 {
    double::spawn(x).unwrap().join_timeout(HUNG).unwrap()
}

/// Runs `double` on a pool of its own.
#[lambda_parallel]
fn double_on_a_pool(x: u32) -> Vec<u32> {
    let pool = Pool::new(1).unwrap();
    pool.map(double, [x, x + 1]).unwrap()
}

#[test]
fn a_one_off_worker_starts_a_one_off_of_its_own() {
    let doubled = double_in_a_one_off::spawn(21).unwrap().join_timeout(HUNG);
    assert_eq!(doubled.unwrap(), 42);
}

#[test]
fn a_pool_task_starts_a_one_off_and_a_pool_of_its_own() {
    let pool = Pool::new(2).unwrap();
    let one_off = pool.apply_async(double_in_a_one_off, (4,)).unwrap();
    let on_a_pool = pool.apply_async(double_on_a_pool, (5,)).unwrap();
    assert_eq!(one_off.get_timeout(HUNG).unwrap(), 8);
    assert_eq!(on_a_pool.get_timeout(HUNG).unwrap(), [10, 12]);
}
