//! A pool's life: closing, joining, terminating, dropping, and recycling its workers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{children, mark, wait_for, TempDir};

/// How long the test waits for a task to reach a point before it fails.
const LIMIT: Duration = Duration::from_secs(30);

#[lambda_parallel]
fn pid(_task: u32) -> u32 {
    std::process::id()
}

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

/// Marks `started`, sleeps, then marks `finished`.
#[lambda_parallel]
fn marks_around_sleep(dir: PathBuf, millis: u64) -> u32 {
    mark(&dir, "started");
    std::thread::sleep(Duration::from_millis(millis));
    mark(&dir, "finished");
    std::process::id()
}

#[test]
fn close_makes_later_calls_fail_with_is_closed() {
    let pool = Pool::new(1).unwrap();
    assert!(!pool.is_closed());
    pool.close();
    assert!(pool.is_closed());
    assert!(pool.map(square, [1]).unwrap_err().is_closed());
    assert!(pool.starmap(square, [(1,)]).unwrap_err().is_closed());
    assert!(pool.apply(square, (1,)).unwrap_err().is_closed());
    assert!(pool.apply_async(square, (1,)).unwrap_err().is_closed());
    assert!(pool.map_async(square, [1]).unwrap_err().is_closed());
    let mut imap = pool.imap(square, [1, 2]);
    assert!(imap.next().unwrap().unwrap_err().is_closed());
    assert!(imap.next().is_none());
    let mut unordered = pool.imap_unordered(square, [1, 2]);
    let (index, outcome) = unordered.next().unwrap();
    assert_eq!(index, 0);
    assert!(outcome.unwrap_err().is_closed());
    assert!(unordered.next().is_none());
}

#[test]
fn map_each_on_a_closed_pool_fails_every_input() {
    let pool = Pool::new(1).unwrap();
    pool.close();
    let outcomes = pool.map_each(square, [1, 2, 3]);
    // One outcome per input, as `map_each` promises: a Lambda handler zips them with its records.
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    for (i, outcome) in outcomes.iter().enumerate() {
        let err = outcome.as_ref().unwrap_err();
        assert!(err.is_closed());
        assert_eq!(err.task_index(), Some(i));
    }
}

#[test]
fn close_lets_tasks_already_submitted_finish() {
    let pool = Pool::new(2).unwrap();
    let submitted = pool.map_async(square, 0..10).unwrap();
    pool.close();
    assert_eq!(
        submitted.get().unwrap(),
        (0..10).map(|x| x * x).collect::<Vec<_>>()
    );
}

#[test]
fn apply_async_starts_its_task_before_the_caller_waits_for_it() {
    let dir = TempDir::new("async-start");
    let pool = Pool::new(1).unwrap();
    let result = pool
        .apply_async(marks_around_sleep, (dir.path().to_owned(), 0))
        .unwrap();
    // The caller does its own work meanwhile, without touching the pool.
    let started = wait_for(dir.path(), "started", Duration::from_secs(5));
    assert!(
        started,
        "the task did not start until the caller waited for it"
    );
    result.get().unwrap();
}

#[test]
fn join_returns_after_running_tasks_finish() {
    let dir = TempDir::new("join");
    let pool = Pool::new(2).unwrap();
    let mut running = pool
        .apply_async(marks_around_sleep, (dir.path().to_owned(), 300))
        .unwrap();
    assert!(!running.wait(Duration::ZERO), "the task sleeps");
    assert!(wait_for(dir.path(), "started", LIMIT));
    // Abandoning the handle leaves the running task to finish.
    drop(running);
    pool.join();
    assert!(dir.path().join("finished").exists());
}

/// Starts a task that sleeps for ten minutes and waits until it runs; the worker's pid.
fn start_a_600_second_task(pool: &Pool, dir: &TempDir) -> u32 {
    let mut sleeper = pool
        .apply_async(marks_around_sleep, (dir.path().to_owned(), 600_000))
        .unwrap();
    assert!(!sleeper.wait(Duration::ZERO));
    assert!(wait_for(dir.path(), "started", LIMIT));
    drop(sleeper);
    let pids = pool.pids();
    assert!(pids.iter().all(|pid| children().contains(pid)));
    pids[0]
}

#[test]
fn terminate_kills_a_running_task_at_once_and_reaps_every_worker() {
    let dir = TempDir::new("terminate");
    let pool = Pool::new(2).unwrap();
    start_a_600_second_task(&pool, &dir);
    let pids = pool.pids();
    pool.terminate();
    let kids = children();
    assert!(pids.iter().all(|pid| !kids.contains(pid)), "{pids:?}");
    assert!(!dir.path().join("finished").exists());
}

#[test]
fn dropping_the_pool_kills_a_running_task_at_once_and_reaps_every_worker() {
    let dir = TempDir::new("drop");
    let pool = Pool::new(2).unwrap();
    start_a_600_second_task(&pool, &dir);
    let pids = pool.pids();
    drop(pool);
    let kids = children();
    assert!(pids.iter().all(|pid| !kids.contains(pid)), "{pids:?}");
}

#[test]
fn max_tasks_per_worker_gives_each_worker_at_most_n_tasks() {
    let pool = Pool::builder()
        .workers(2)
        .max_tasks_per_worker(3)
        .chunk_size(1)
        .build()
        .unwrap();
    let first = pool.pids();
    let pids = pool.map(pid, 0..20).unwrap();
    let mut counts = BTreeMap::new();
    for pid in &pids {
        *counts.entry(*pid).or_insert(0) += 1;
    }
    assert!(counts.values().all(|n| *n <= 3), "{counts:?}");
    // 20 tasks, at most 3 a worker.
    assert!(counts.len() >= 7, "{counts:?}");
    // The workers that reached the limit were retired and reaped, not left behind. (Which
    // ones reach it is the scheduler's choice: a worker that is slow to run takes fewer tasks,
    // and one of the first two may end the call below its limit, alive.)
    let kids = children();
    let retired: Vec<_> = counts
        .iter()
        .filter(|(_, n)| **n == 3)
        .map(|(pid, _)| *pid)
        .collect();
    assert!(retired.len() >= 4, "{counts:?}");
    assert!(
        retired.iter().all(|pid| !kids.contains(pid)),
        "{retired:?} {kids:?}"
    );
    assert!(
        first.iter().all(|pid| counts.contains_key(pid)),
        "{first:?} {counts:?}"
    );
}

#[test]
fn pool_built_on_a_thread_that_has_ended_keeps_its_workers() {
    let (pool, first) = std::thread::spawn(|| {
        let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
        // Both workers have run a task, so both are past their start-up.
        let mut ran = pool.map(pid, 0..2).unwrap();
        ran.sort_unstable();
        ran.dedup();
        assert_eq!(ran.len(), 2);
        (pool, ran)
    })
    .join()
    .unwrap();
    let outcomes = pool.map_each(pid, 0..50);
    for outcome in &outcomes {
        let pid = outcome.as_ref().unwrap();
        assert!(first.contains(pid), "a task ran on a replacement worker");
    }
}

/// What the kernel's OOM killer weighs this process by, read in the process itself.
#[lambda_parallel]
fn own_oom_score_adj() -> String {
    let score = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    score.trim().to_owned()
}

/// Forked straight from the caller (no `init`), pool and one-off workers alike are the OOM
/// killer's first choice, and the caller keeps its own score (issue #11, case 3).
#[test]
fn workers_go_first_when_memory_runs_out() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.apply(own_oom_score_adj, ()).unwrap(), "1000");
    assert_eq!(own_oom_score_adj::spawn().unwrap().join().unwrap(), "1000");
    assert_ne!(own_oom_score_adj(), "1000");
}
