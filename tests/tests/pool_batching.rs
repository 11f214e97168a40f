//! How a pool splits its input into batches, and hands the batches to its workers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{mark, wait_for, TempDir};

#[lambda_parallel]
fn pid(_task: u32) -> u32 {
    std::process::id()
}

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

/// How many tasks each pid ran.
fn tasks_per_pid(pids: &[u32]) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for pid in pids {
        *counts.entry(*pid).or_insert(0) += 1;
    }
    counts
}

#[test]
fn chunk_size_runs_consecutive_tasks_on_one_worker() {
    let pool = Pool::builder().workers(2).chunk_size(5).build().unwrap();
    let pids = pool.map(pid, 0..40).unwrap();
    for batch in pids.chunks(5) {
        assert!(
            batch.iter().all(|pid| *pid == batch[0]),
            "a batch ran on several workers: {pids:?}"
        );
    }
}

#[test]
fn chunk_size_applies_to_imap_too() {
    let pool = Pool::builder().workers(2).chunk_size(4).build().unwrap();
    let pids: Vec<u32> = pool.imap(pid, 0..24).map(Result::unwrap).collect();
    for batch in pids.chunks(4) {
        assert!(batch.iter().all(|pid| *pid == batch[0]), "{pids:?}");
    }
}

#[lambda_parallel]
fn nap_pid(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

#[test]
fn imap_of_slow_tasks_keeps_one_task_a_batch_so_both_workers_share_them() {
    // A stream sizes its batches by the rate of outcomes; tasks of 30 ms stay one a batch, so
    // that no worker is handed a long run of them while the other idles.
    let pool = Pool::new(2).unwrap();
    let pids: Vec<u32> = pool.imap(nap_pid, [30; 10]).map(Result::unwrap).collect();
    let counts = tasks_per_pid(&pids);
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.values().all(|n| *n >= 3), "{counts:?}");
}

#[test]
fn imap_of_tiny_tasks_grows_its_batches_within_a_bounded_window() {
    // Tiny tasks make the batches grow (that is what makes streaming cost about what `map`
    // does: a batch runs its tasks one after another on one worker, so runs of one pid show
    // it), and the input is still read lazily: what is pulled stays within 4 batches of the
    // largest size a worker ahead of what was yielded.
    let pool = Pool::new(2).unwrap();
    let pulled = std::cell::Cell::new(0_u32);
    let inputs = (0_u32..).inspect(|&i| pulled.set(i + 1));
    let taken = 50_000;
    let pids: Vec<u32> = pool
        .imap(pid, inputs)
        .take(taken)
        .map(Result::unwrap)
        .collect();
    let longest = pids
        .chunk_by(|a, b| a == b)
        .map(<[u32]>::len)
        .max()
        .unwrap_or(0);
    // How far they grow follows the machine's speed (a debug build on a loaded machine gets to
    // a few dozen tasks; a release build to the 1,024 cap); one task a batch makes runs of a
    // handful at most (6 seen).
    assert!(
        longest >= 16,
        "the longest run on one worker is {longest} tasks"
    );
    let ahead = pulled.get() as usize - taken;
    assert!(ahead <= 4 * 2 * 1024 + 1024, "{ahead} inputs pulled ahead");
}

#[test]
fn max_tasks_per_worker_splits_batches_larger_than_a_workers_budget() {
    let pool = Pool::builder()
        .workers(2)
        .chunk_size(5)
        .max_tasks_per_worker(3)
        .build()
        .unwrap();
    let pids = pool.map(pid, 0..30).unwrap();
    let counts = tasks_per_pid(&pids);
    assert!(counts.values().all(|n| *n <= 3), "{counts:?}");
    assert!(counts.len() >= 10, "{counts:?}");
}

#[test]
fn default_chunking_runs_100_000_tiny_tasks() {
    let pool = Pool::new(2).unwrap();
    let squares = pool.map(square, 0..100_000).unwrap();
    assert_eq!(squares.len(), 100_000);
    assert!(squares.iter().zip(0_u64..).all(|(s, x)| *s == x * x));
}

#[test]
fn default_chunking_of_an_input_of_unknown_length() {
    let pool = Pool::new(2).unwrap();
    let inputs = (0_u64..).take_while(|x| *x < 5_000).filter(|x| x % 2 == 0);
    let squares = pool.map(square, inputs).unwrap();
    assert_eq!(squares.len(), 2_500);
    assert!(squares
        .iter()
        .zip((0_u64..).step_by(2))
        .all(|(s, x)| *s == x * x));
}

/// Marks `task` as started, then waits for every task of `0..tasks` to have started too:
/// whether they all did.
#[lambda_parallel]
fn meet(dir: PathBuf, task: u32, tasks: u32) -> bool {
    mark(&dir, &task.to_string());
    (0..tasks).all(|other| wait_for(&dir, &other.to_string(), Duration::from_secs(10)))
}

#[test]
fn as_many_tasks_as_workers_all_run_at_once() {
    // Two slow tasks on two workers must not queue behind each other on one of them.
    for workers in [2, 3] {
        let dir = TempDir::new("meet");
        let pool = Pool::new(workers).unwrap();
        let path = dir.path().to_owned();
        let tasks = u32::try_from(workers).unwrap();
        let met = pool
            .starmap(meet, (0..tasks).map(|task| (path.clone(), task, tasks)))
            .unwrap();
        assert!(met.iter().all(|met| *met), "{workers} workers: {met:?}");
    }
}
