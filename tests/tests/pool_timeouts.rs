//! A task timeout kills and replaces a stuck worker; a pool's deadline stops all its work.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{children, mark, TempDir};

/// Marks its start, sleeps `seconds`, and returns its worker's pid.
#[lambda_parallel]
fn sleeps(dir: PathBuf, task: u32, seconds: u64) -> u32 {
    mark(&dir, &task.to_string());
    std::thread::sleep(Duration::from_secs(seconds));
    std::process::id()
}

#[test]
fn task_timeout_kills_a_stuck_worker_and_its_slot_serves_the_next_tasks() {
    let dir = TempDir::new("timeout");
    let timeout = Duration::from_millis(500);
    let pool = Pool::builder()
        .workers(1)
        .chunk_size(1)
        .task_timeout(timeout)
        .build()
        .unwrap();
    let [first] = pool.pids()[..] else {
        panic!("one worker")
    };
    let seconds = [0, 600, 0, 0];
    let inputs = (0..4).map(|task| (dir.path().to_owned(), task, seconds[task as usize]));
    let outcomes = pool.starmap_each(sleeps, inputs);
    assert_eq!(*outcomes[0].as_ref().unwrap(), first);
    let err = outcomes[1].as_ref().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.task_index(), Some(1));
    assert_eq!(err.signal(), None);
    assert_eq!(
        err.to_string(),
        "task 1 of worker `pool_timeouts::sleeps` timed out after 500ms and was killed"
    );
    // The stuck worker is gone; its replacement ran the tasks after it.
    assert!(!children().contains(&first));
    let second = *outcomes[2].as_ref().unwrap();
    assert_ne!(second, first);
    assert_eq!(*outcomes[3].as_ref().unwrap(), second);
    assert_eq!(pool.pids(), [second]);
}

#[test]
fn task_timeout_in_imap_fails_only_the_stuck_task() {
    let dir = TempDir::new("timeout-imap");
    let pool = Pool::builder()
        .workers(2)
        .task_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let inputs = (0..6).map(|task| (dir.path().to_owned(), task, u64::from(task == 2) * 600));
    let outcomes: Vec<_> = pool
        .imap(|(dir, task, seconds)| sleeps(dir, task, seconds), inputs)
        .collect();
    for (task, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.is_err(), task == 2);
    }
    assert!(outcomes[2].as_ref().unwrap_err().is_timeout());
}

#[test]
fn deadline_kills_running_tasks_and_fails_unstarted_ones() {
    let dir = TempDir::new("deadline");
    let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
    let first = pool.pids();
    pool.set_deadline(Some(Instant::now() + Duration::from_millis(300)));
    let inputs = (0..8).map(|task| (dir.path().to_owned(), task, 600));
    let outcomes = pool.starmap_each(sleeps, inputs);
    assert_eq!(outcomes.len(), 8);
    for (task, outcome) in outcomes.iter().enumerate() {
        let err = outcome.as_ref().unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(err.task_index(), Some(task));
    }
    // Only the tasks running at the deadline started, at most one per worker.
    let started = dir.names();
    assert!(started.len() <= 2, "{started:?}");
    let kids = children();
    assert!(
        first.iter().all(|pid| !kids.contains(pid)),
        "killed and reaped"
    );
    // Without the deadline the pool serves again.
    pool.set_deadline(None);
    assert_eq!(pool.map(|x: u8| x + 1, [1]).unwrap(), [2]);
}

#[test]
fn deadline_already_past_fails_every_task_without_starting_one() {
    let dir = TempDir::new("deadline-past");
    let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
    let first = pool.pids();
    pool.set_deadline(Some(Instant::now()));
    let inputs = (0..4).map(|task| (dir.path().to_owned(), task, 0));
    let outcomes = pool.starmap_each(sleeps, inputs);
    assert!(outcomes
        .iter()
        .all(|o| o.as_ref().unwrap_err().is_timeout()));
    // No task was handed to a worker: none had to be killed.
    assert_eq!(pool.pids(), first);
    assert!(dir.names().is_empty());
}
