//! A drop on a tokio runtime's thread never waits for a process to end: a dropped
//! `JoinFuture` kills its worker and leaves the reap to a blocking thread (issue #11, case 5).
//!
//! One test: any spawn reaps the queued orphans that have ended, which would hide what this
//! one looks for.

use std::time::Duration;

use lambda_parallel::lambda_parallel;
use lambda_parallel_tests::{children, reaped_within};

#[lambda_parallel]
fn stuck() {
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn dropping_an_awaited_handle_leaves_the_reap_to_a_blocking_thread() {
    // One blocking thread, kept busy until the worker's drop is over: a reap handed to it
    // must wait, so the drop itself cannot have reaped the worker.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let handle = stuck::spawn().unwrap();
    let pid = handle.pid();
    let (busy_tx, busy_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    runtime.block_on(async move {
        let blocker = tokio::task::spawn_blocking(move || {
            busy_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        busy_rx.recv().unwrap();
        let outcome = tokio::time::timeout(Duration::from_millis(50), handle).await;
        assert!(outcome.is_err(), "the stuck worker returned: {outcome:?}");
        assert!(children().contains(&pid), "the drop waited for the reap");
        release_tx.send(()).unwrap();
        blocker.await.unwrap();
    });
    assert!(
        reaped_within(pid, Duration::from_secs(5)),
        "worker {pid} was never reaped"
    );
}
