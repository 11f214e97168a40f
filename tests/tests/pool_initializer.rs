//! A pool's initializer runs once in each worker before its first task; when it fails, the
//! tasks of its worker fail with an error that names it, and no fork is spent on it again.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, Error, Kind, Pool};
use lambda_parallel_tests::{mark, wait_for, TempDir};

/// What the worker's initializer set: the pid it ran in, and its label.
static STATE: OnceLock<(u32, String)> = OnceLock::new();

/// Records that it ran in this process, as the file `init-<pid>` in `dir`: creating it fails if
/// the initializer ran here before, and so does setting the state.
#[lambda_parallel]
fn remember(dir: String, label: String) -> Result<(), String> {
    let pid = std::process::id();
    std::fs::File::create_new(Path::new(&dir).join(format!("init-{pid}")))
        .map_err(|err| format!("ran twice in {pid}: {err}"))?;
    STATE
        .set((pid, label))
        .map_err(|_| format!("state set twice in {pid}"))
}

/// The state the initializer set in this worker, and this worker's pid.
#[lambda_parallel]
fn read_state(_task: u32) -> (u32, Option<(u32, String)>) {
    (std::process::id(), STATE.get().cloned())
}

/// Marks that it ran, then fails.
#[lambda_parallel]
fn refuse(dir: String) -> Result<(), String> {
    mark(Path::new(&dir), &format!("init-{}", std::process::id()));
    Err(format!("no database at {dir}"))
}

#[lambda_parallel]
fn panic_in_init() {
    panic!("cannot load the model");
}

#[lambda_parallel]
fn abort_in_init() {
    std::process::abort();
}

#[lambda_parallel]
fn hang_in_init() {
    std::thread::sleep(Duration::from_secs(600));
}

/// Waits for the file `release` in `dir` (for at most a minute).
#[lambda_parallel]
fn wait_for_release(dir: String) -> Result<(), String> {
    if wait_for(Path::new(&dir), "release", Duration::from_secs(60)) {
        Ok(())
    } else {
        Err("never released".to_owned())
    }
}

#[lambda_parallel]
fn double(x: u32) -> u32 {
    2 * x
}

fn init_files(dir: &TempDir) -> Vec<String> {
    dir.names()
        .into_iter()
        .filter(|name| name.starts_with("init-"))
        .collect()
}

/// Checks that every outcome failed because the initializer did, with a message that names
/// it and holds `says`.
fn assert_all_failed_by_init(outcomes: &[Result<u32, Error>], initializer: &str, says: &str) {
    assert!(!outcomes.is_empty());
    for outcome in outcomes {
        let err = outcome.as_ref().expect_err("the task must not have run");
        assert_eq!(err.kind(), Kind::Initializer, "{err}");
        let message = err.to_string();
        assert!(
            message.contains("did not run: the pool's initializer failed")
                && message.contains(initializer)
                && message.contains(says),
            "{message}"
        );
    }
}

#[test]
fn tasks_see_the_state_that_their_workers_initializer_set() {
    let dir = TempDir::new("init-state");
    let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
    // Recycling after two tasks makes new workers, each of which runs the initializer anew.
    let pool = Pool::builder()
        .workers(2)
        .max_tasks_per_worker(2)
        .chunk_size(1)
        .initializer(remember, (path, "ready".to_owned()))
        .build()
        .unwrap();
    let outcomes = pool.map(read_state, 0..10).unwrap();
    let inits = init_files(&dir);
    let mut pids = Vec::new();
    for (pid, state) in outcomes {
        assert_eq!(
            state,
            Some((pid, "ready".to_owned())),
            "task in worker {pid}"
        );
        assert!(inits.contains(&format!("init-{pid}")));
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    assert!(pids.len() >= 5, "recycled workers ran the tasks: {pids:?}");
}

#[test]
fn an_initializer_that_returns_err_fails_the_tasks_and_forks_no_more_workers() {
    let dir = TempDir::new("init-err");
    let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
    let pool = Pool::builder()
        .workers(2)
        .initializer(refuse, (path,))
        .build()
        .unwrap();
    let first = pool.map_each(double, 0..6);
    assert_all_failed_by_init(&first, "pool_initializer::refuse", "no database at");
    assert!(first[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .starts_with("task 0 of worker `pool_initializer::double` did not run"));
    // Every worker's initializer failed: the next call fails at once, without a fork.
    assert!(pool.pids().is_empty());
    let second = pool.map_each(double, 0..3);
    assert_all_failed_by_init(&second, "pool_initializer::refuse", "no database at");
    assert_eq!(init_files(&dir).len(), 2, "one initializer run per worker");
}

#[test]
fn an_initializer_that_panics_fails_the_tasks_with_its_message() {
    let pool = Pool::builder()
        .workers(1)
        .initializer(panic_in_init, ())
        .build()
        .unwrap();
    let outcomes = pool.map_each(double, [1, 2]);
    assert_all_failed_by_init(&outcomes, "panic_in_init", "cannot load the model");
}

#[test]
fn an_initializer_that_crashes_fails_the_tasks_with_its_signal() {
    let pool = Pool::builder()
        .workers(1)
        .initializer(abort_in_init, ())
        .build()
        .unwrap();
    let outcomes = pool.map_each(double, [1, 2]);
    assert_all_failed_by_init(&outcomes, "abort_in_init", "SIGABRT");
}

#[test]
fn the_task_timeout_applies_to_the_initializer() {
    let pool = Pool::builder()
        .workers(1)
        .task_timeout(Duration::from_millis(100))
        .initializer(hang_in_init, ())
        .build()
        .unwrap();
    let outcomes = pool.map_each(double, [1]);
    assert_all_failed_by_init(&outcomes, "hang_in_init", "timed out");
}

#[test]
fn an_awaited_call_sees_the_initializers_failure() {
    let pool = Pool::builder()
        .workers(1)
        .initializer(panic_in_init, ())
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let call = pool.map_async(double, [1, 2]).unwrap();
    let outcomes = runtime.block_on(call.each());
    assert_all_failed_by_init(&outcomes, "panic_in_init", "cannot load the model");
}

/// Set by `set_inline` in this process: only the inline pool's test runs it here.
static INLINE: OnceLock<u32> = OnceLock::new();

#[lambda_parallel]
fn set_inline(value: u32) {
    INLINE.set(value).expect("set once");
}

#[lambda_parallel]
fn add_inline(x: u32) -> u32 {
    x + INLINE.get().copied().unwrap_or(0)
}

#[test]
fn a_pool_of_no_workers_runs_its_initializer_once_at_build() {
    let pool = Pool::builder()
        .workers(0)
        .initializer(set_inline, (100,))
        .build()
        .unwrap();
    assert_eq!(INLINE.get(), Some(&100));
    assert_eq!(pool.map(add_inline, [1, 2]).unwrap(), [101, 102]);
    let failing = Pool::builder()
        .workers(0)
        .initializer(panic_in_init, ())
        .build()
        .unwrap();
    let outcomes = failing.map_each(double, [1]);
    assert_all_failed_by_init(&outcomes, "panic_in_init", "cannot load the model");
}

#[test]
fn the_deadline_fails_tasks_but_lets_a_worker_finish_its_initializer() {
    let dir = TempDir::new("init-deadline");
    let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
    let pool = Pool::builder()
        .workers(1)
        .initializer(wait_for_release, (path,))
        .build()
        .unwrap();
    let pids = pool.pids();
    pool.set_deadline(Some(std::time::Instant::now()));
    let late = pool.map_each(double, [1]);
    assert_eq!(late[0].as_ref().unwrap_err().kind(), Kind::Deadline);
    // The worker that was initializing is still the pool's, and serves once released.
    assert_eq!(pool.pids(), pids);
    pool.set_deadline(None);
    mark(dir.path(), "release");
    assert_eq!(pool.map(double, [4]).unwrap(), [8]);
    assert_eq!(pool.pids(), pids);
}

#[test]
fn the_deadline_fails_tasks_held_behind_an_initializer_as_late_not_as_its_failure() {
    let dir = TempDir::new("init-deadline-held");
    let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
    let pool = Pool::builder()
        .workers(1)
        .initializer(wait_for_release, (path,))
        .build()
        .unwrap();
    // The task goes to the worker behind its initializer, which waits past the deadline: the
    // call returns at the deadline, and the worker (killed or spared) is not given up on.
    pool.set_deadline(Some(std::time::Instant::now() + Duration::from_millis(50)));
    let late = pool.map_each(double, [1]);
    assert_eq!(late[0].as_ref().unwrap_err().kind(), Kind::Deadline);
    assert_eq!(pool.pids().len(), 1);
    pool.set_deadline(None);
    mark(dir.path(), "release");
    assert_eq!(pool.map(double, [4]).unwrap(), [8]);
}
