//! `map` fails fast: the first failure stops the call, and the error it returns is the failed
//! task of lowest index, once the tasks that were running have finished.

use std::path::PathBuf;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{mark, wait_for, TempDir};

/// Fails every task; task 0 a little after the others, so that a later one fails first.
#[lambda_parallel]
fn fails_all(task: u32) -> u32 {
    if task == 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("task {task} failed")
}

#[test]
fn map_returns_the_error_of_the_lowest_index() {
    let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
    let err = pool.map(fails_all, 0..8).unwrap_err();
    assert_eq!(err.task_index(), Some(0));
    assert_eq!(err.panic_message(), Some("task 0 failed"));
}

/// Task 0 fails once another task has started on another worker; every other task marks its
/// start, runs a while, and marks its end.
#[lambda_parallel]
fn fails_while_others_run(dir: PathBuf, task: u32) -> u32 {
    if task == 0 {
        let others =
            (1..4).any(|other| wait_for(&dir, &format!("started-{other}"), Duration::from_secs(2)));
        panic!("others started: {others}");
    }
    mark(&dir, &format!("started-{task}"));
    std::thread::sleep(Duration::from_millis(300));
    mark(&dir, &format!("finished-{task}"));
    task
}

#[test]
fn map_returns_only_after_the_running_tasks_finish() {
    let dir = TempDir::new("fail-fast-running");
    let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
    let inputs = (0..4).map(|task| (dir.path().to_owned(), task));
    let err = pool.starmap(fails_while_others_run, inputs).unwrap_err();
    assert_eq!(err.task_index(), Some(0));
    assert_eq!(err.panic_message(), Some("others started: true"));
    let names = dir.names();
    for started in names.iter().filter(|name| name.starts_with("started-")) {
        let finished = started.replace("started-", "finished-");
        assert!(names.contains(&finished), "{started} still ran: {names:?}");
    }
    // The workers are idle again: the pool serves the next call.
    assert_eq!(pool.map(|x: u32| x + 1, [1, 2]).unwrap(), [2, 3]);
}

/// Marks its start; task 0 then fails.
#[lambda_parallel]
fn marks_start(dir: PathBuf, task: u32) -> u32 {
    mark(&dir, &task.to_string());
    assert!(task != 0, "task 0 failed");
    task
}

#[test]
fn map_sends_no_task_to_a_worker_after_a_failure() {
    // One worker, one task a batch: it holds task 0 and, ready to start next, task 1. Once task
    // 0 has failed, nothing more is sent.
    let dir = TempDir::new("fail-fast-stops");
    let pool = Pool::builder().workers(1).chunk_size(1).build().unwrap();
    let inputs = (0..20).map(|task| (dir.path().to_owned(), task));
    let err = pool.starmap(marks_start, inputs).unwrap_err();
    assert_eq!(err.task_index(), Some(0));
    let started = dir.names();
    assert!(started.len() <= 2, "{started:?}");
    assert!(started.iter().all(|task| task == "0" || task == "1"));
}

#[test]
fn map_each_does_not_stop_at_a_failure() {
    let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
    let outcomes = pool.map_each(fails_all, 0..20);
    assert_eq!(outcomes.len(), 20);
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.as_ref().unwrap_err().task_index(), Some(i));
    }
}
