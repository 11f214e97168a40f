//! With the `tokio` feature, a worker and a pool call are awaited without blocking a runtime
//! thread.

use std::future::IntoFuture;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{children, mark, reaped_within, wait_for, TempDir};

/// A runtime with two worker threads, as small as one that a blocking await could starve.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the runtime starts")
}

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[lambda_parallel]
fn fail(message: String) -> u64 {
    panic!("{message}")
}

/// Waits for the file `release` in `dir`: false if it never came (the test then fails).
#[lambda_parallel]
fn wait_for_release(dir: String) -> bool {
    wait_for(Path::new(&dir), "release", Duration::from_secs(60))
}

#[lambda_parallel]
fn stuck() -> u64 {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn await_returns_the_value() {
    let value = runtime().block_on(async { square::spawn(12)?.await });
    assert_eq!(value.unwrap(), 144);
}

#[test]
fn await_returns_a_worker_panic_as_err() {
    let err = runtime()
        .block_on(async { fail::spawn("boom".into())?.await })
        .unwrap_err();
    assert_eq!(err.panic_message(), Some("boom"));
}

#[test]
fn awaiting_many_workers_leaves_the_runtime_threads_free() {
    const WORKERS: usize = 50;
    let dir = TempDir::new("tokio-free");
    let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
    let awaiting = Arc::new(AtomicUsize::new(0));
    let results = runtime().block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..WORKERS {
            let handle = wait_for_release::spawn(path.clone()).unwrap();
            let awaiting = awaiting.clone();
            tasks.push(tokio::spawn(async move {
                awaiting.fetch_add(1, Ordering::SeqCst);
                handle.await
            }));
        }
        // Every worker waits for `release`, which only this ticker makes, after it has ticked
        // while all the awaits were pending. Were an await to block its thread, two would take
        // both runtime threads: the ticker would never tick, and the workers would give up.
        let ticker = tokio::spawn({
            let dir = dir.path().to_owned();
            let awaiting = awaiting.clone();
            async move {
                let mut interval = tokio::time::interval(Duration::from_millis(1));
                let mut ticks_while_all_waited = 0;
                while ticks_while_all_waited < 20 {
                    interval.tick().await;
                    if awaiting.load(Ordering::SeqCst) == WORKERS {
                        ticks_while_all_waited += 1;
                    }
                }
                mark(&dir, "release");
            }
        });
        ticker.await.unwrap();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    assert_eq!(results.len(), WORKERS);
    for result in results {
        assert!(result.unwrap(), "a worker gave up waiting for the release");
    }
}

#[test]
fn timeout_around_await_kills_the_worker() {
    let handle = stuck::spawn().unwrap();
    let pid = handle.pid();
    assert!(children().contains(&pid));
    let outcome =
        runtime().block_on(async { tokio::time::timeout(Duration::from_millis(50), handle).await });
    assert!(outcome.is_err(), "the stuck worker returned: {outcome:?}");
    // Dropping the future killed the worker, and a blocking thread reaped it: not even a
    // zombie is left.
    assert!(
        reaped_within(pid, Duration::from_secs(5)),
        "worker {pid} is still a child"
    );
}

#[test]
fn join_future_is_send() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let future = square::spawn(2).unwrap().into_future();
    assert_send(&future);
    assert_eq!(runtime().block_on(future).unwrap(), 4);
}

#[test]
fn awaited_map_calls_proceed_together() {
    const CALLS: u64 = 5;
    const TASKS: u64 = 200;
    let pool = Pool::new(3).unwrap();
    let results = runtime().block_on(async {
        let calls: Vec<_> = (0..CALLS)
            .map(|call| {
                let inputs: Vec<u64> = (call * TASKS..(call + 1) * TASKS).collect();
                tokio::spawn(pool.map_async(square, inputs).unwrap().into_future())
            })
            .collect();
        let mut results = Vec::new();
        for call in calls {
            results.extend(call.await.unwrap().unwrap());
        }
        results
    });
    let expected: Vec<u64> = (0..CALLS * TASKS).map(|x| x * x).collect();
    assert_eq!(results, expected);
}

#[test]
fn awaited_map_each_returns_every_outcome() {
    let pool = Pool::new(2).unwrap();
    let each = pool
        .map_async(|x: u64| if x == 2 { panic!("two") } else { x }, [1, 2, 3])
        .unwrap()
        .each();
    let outcomes = runtime().block_on(each);
    assert_eq!(outcomes[0].as_ref().unwrap(), &1);
    assert_eq!(
        outcomes[1].as_ref().unwrap_err().panic_message(),
        Some("two")
    );
    assert_eq!(outcomes[2].as_ref().unwrap(), &3);
}

#[test]
fn awaited_apply_and_starmap() {
    let pool = Pool::new(2).unwrap();
    let runtime = runtime();
    let sum = runtime.block_on(
        pool.apply_async(|a: u64, b: u64| a + b, (2, 3))
            .unwrap()
            .into_future(),
    );
    assert_eq!(sum.unwrap(), 5);
    let products = pool
        .starmap_async(|a: u64, b: u64| a * b, [(2, 3), (4, 5)])
        .unwrap();
    assert_eq!(runtime.block_on(products.into_future()).unwrap(), [6, 20]);
}

#[test]
fn pool_futures_are_send_and_static() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let pool = Pool::new(1).unwrap();
    let future = pool.map_async(square, [3]).unwrap().into_future();
    // The pool handle may go: the future owns a share of the pool.
    drop(pool);
    assert_send(&future);
    assert_eq!(runtime().block_on(future).unwrap(), [9]);
}
