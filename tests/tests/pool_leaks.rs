//! Ending a pool, however it ends, leaves no process and no file descriptor behind, and never
//! waits for a task that runs on.
//!
//! One test in this binary, so that no other test opens files or forks while it counts.

use std::path::PathBuf;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{children, mark, open_fds, wait_for, TempDir};

#[lambda_parallel]
fn marks_then_sleeps(dir: PathBuf, task: u32, seconds: u64) -> u32 {
    mark(&dir, &task.to_string());
    std::thread::sleep(Duration::from_secs(seconds));
    task
}

/// Builds a pool of two workers, one of them running a task that sleeps for ten minutes.
fn pool_with_a_600_second_task(dir: &TempDir, task: u32) -> Pool {
    let pool = Pool::new(2).unwrap();
    let mut sleeper = pool
        .apply_async(marks_then_sleeps, (dir.path().to_owned(), task, 600))
        .unwrap();
    assert!(!sleeper.wait(Duration::ZERO));
    assert!(wait_for(
        dir.path(),
        &task.to_string(),
        Duration::from_secs(30)
    ));
    drop(sleeper);
    pool
}

#[test]
fn ending_a_pool_in_any_way_leaves_no_process_and_no_fd() {
    let dir = TempDir::new("pool-leaks");
    let fds = open_fds();
    let kids = children();

    pool_with_a_600_second_task(&dir, 0).terminate();
    assert_eq!(children(), kids, "terminate reaped every worker");
    assert_eq!(open_fds(), fds, "terminate closed every pipe and pidfd");

    drop(pool_with_a_600_second_task(&dir, 1));
    assert_eq!(children(), kids, "drop reaped every worker");
    assert_eq!(open_fds(), fds, "drop closed every pipe and pidfd");

    let pool = Pool::builder()
        .workers(3)
        .max_tasks_per_worker(2)
        .task_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let inputs = (2..12).map(|task| (dir.path().to_owned(), task, u64::from(task == 5) * 600));
    let outcomes = pool.starmap_each(marks_then_sleeps, inputs);
    assert!(outcomes[3].as_ref().unwrap_err().is_timeout());
    let get_timeout = pool
        .apply_async(marks_then_sleeps, (dir.path().to_owned(), 12, 600))
        .unwrap()
        .get_timeout(Duration::from_millis(50));
    assert!(get_timeout.unwrap_err().is_timeout());
    pool.join();
    assert_eq!(
        children(),
        kids,
        "recycled, timed-out and joined workers were reaped"
    );
    assert_eq!(open_fds(), fds, "and their descriptors closed");
}
