//! The awaited pool calls (the `tokio` feature), as a handler awaits them: `map_async(..)?.await`,
//! `.each()`, `apply_async(..)?.await`, `tokio::spawn` of a pool future, many callers at once,
//! dropped futures, the `imap` streams, and awaited one-off workers.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

// `Imap` is an `Iterator`; `into_stream()` makes it a `Stream`, whose methods `StreamExt` gives.
use futures_util::StreamExt;
use lambda_parallel::{lambda_parallel, Kind, Pool};
use outsider::{item, price_order, sample_order};

#[lambda_parallel]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Fails the test rather than hanging it.
async fn within<F: IntoFuture>(limit: Duration, future: F) -> F::Output {
    tokio::time::timeout(limit, future)
        .await
        .expect("the call did not finish in time")
}

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn map_async_await_on_a_current_thread_runtime() {
    let pool = Pool::new(2).unwrap();
    let squares = within(LIMIT, pool.map_async(|x: u32| x * x, 1..=100).unwrap())
        .await
        .unwrap();
    assert_eq!(squares, (1..=100).map(|x| x * x).collect::<Vec<_>>());

    let receipts = within(
        LIMIT,
        pool.map_async(price_order, [sample_order("a", vec![item(1, 2, 3)])])
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(receipts[0].as_ref().unwrap().total_micro_cents, 6_000_000);

    let sum = within(
        LIMIT,
        pool.apply_async(|a: u32, b: u32| a + b, (2, 3)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(sum, 5);

    let products = within(
        LIMIT,
        pool.starmap_async(|a: u32, b: u32| a * b, [(2, 3), (4, 5)])
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(products, [6, 20]);
}

#[tokio::test]
async fn each_awaits_every_outcome() {
    let pool = Pool::new(2).unwrap();
    let outcomes = within(
        LIMIT,
        pool.map_async(|x: u32| 12 / x, [4, 0, 3]).unwrap().each(),
    )
    .await;
    assert_eq!(*outcomes[0].as_ref().unwrap(), 3);
    let err = outcomes[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), Kind::Panic);
    assert_eq!(err.task_index(), Some(1));
    assert_eq!(*outcomes[2].as_ref().unwrap(), 4);
    let outcomes = within(
        LIMIT,
        pool.starmap_async(|a: u32, b: u32| a / b, [(1, 0), (4, 2)])
            .unwrap()
            .each(),
    )
    .await;
    assert!(outcomes[0].is_err() && outcomes[1].is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_future_can_be_tokio_spawned() {
    let pool = Pool::new(2).unwrap();
    let spawned = tokio::spawn(pool.map_async(nap, [10, 20, 30]).unwrap().into_future());
    let also = tokio::spawn({
        let pool = pool.clone();
        async move { pool.apply_async(nap, (5,))?.await }
    });
    assert_eq!(within(LIMIT, spawned).await.unwrap().unwrap(), [10, 20, 30]);
    assert_eq!(within(LIMIT, also).await.unwrap().unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_callers_each_get_their_own_results() {
    let pool = Pool::new(2).unwrap();
    let callers: Vec<_> = (0..64_u64)
        .map(|caller| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let xs: Vec<u64> = (0..50).map(|x| caller * 1000 + x).collect();
                let doubled = pool.map_async(|x: u64| x * 2, xs.clone())?.await?;
                assert_eq!(doubled, xs.iter().map(|x| x * 2).collect::<Vec<_>>());
                let one = pool.apply_async(|x: u64| x + 1, (caller,))?.await?;
                assert_eq!(one, caller + 1);
                let each = pool
                    .map_async(|x: u64| 100 / x, [caller, 0])
                    .unwrap()
                    .each()
                    .await;
                assert!(each[1].as_ref().unwrap_err().is_panic());
                Ok::<_, lambda_parallel::Error>(caller)
            })
        })
        .collect();
    // And a blocking caller on another thread, at the same time.
    let blocking = {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || pool.map(|x: u32| x + 1, 0..500))
    };
    let started = Instant::now();
    for (expected, caller) in (0..64_u64).zip(callers) {
        assert_eq!(within(LIMIT, caller).await.unwrap().unwrap(), expected);
    }
    let blocking = within(LIMIT, blocking).await.unwrap().unwrap();
    assert_eq!(blocking, (1..=500).collect::<Vec<u32>>());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_on_several_runtimes_and_threads_at_once() {
    // Callers on several runtimes and threads at once: each thread runs its own small runtime.
    let pool = Pool::new(2).unwrap();
    let threads: Vec<_> = (0..4_u32)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let calls: Vec<_> = (0..8)
                        .map(|c| {
                            pool.map_async(|x: u32| x * 3, [t, c])
                                .unwrap()
                                .into_future()
                        })
                        .collect();
                    let mut out = Vec::new();
                    for call in calls {
                        out.push(call.await.unwrap());
                    }
                    out
                })
            })
        })
        .collect();
    for (t, thread) in (0..4_u32).zip(threads) {
        let out = tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
        assert_eq!(out, (0..8).map(|c| vec![t * 3, c * 3]).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn dropping_a_future_cancels_its_queued_tasks() {
    let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
    // 20 naps of 300 ms on 2 workers: 3 s of work, of which at most the running part goes on.
    let slow = pool.map_async(nap, vec![300; 20]).unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow.into_future())
            .await
            .is_err()
    );
    let started = Instant::now();
    let quick = within(LIMIT, pool.map_async(|x: u8| x, [1, 2, 3]).unwrap())
        .await
        .unwrap();
    assert_eq!(quick, [1, 2, 3]);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // Dropping the handle itself, never awaited, as well.
    drop(pool.map_async(nap, vec![300; 20]).unwrap());
    let started = Instant::now();
    assert_eq!(
        within(LIMIT, pool.apply_async(nap, (1,)).unwrap())
            .await
            .unwrap(),
        1
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn imap_and_imap_unordered_are_streams() {
    let pool = Pool::new(2).unwrap();
    let mut squares = pool.imap(|x: u64| x * x, 1..=1000).into_stream();
    let mut total = 0;
    while let Some(square) = within(LIMIT, squares.next()).await {
        total += square.unwrap();
    }
    assert_eq!(total, 333_833_500);

    // An endless input, taken from as a stream.
    let first: Vec<u64> = within(
        LIMIT,
        pool.imap(|x: u64| x + 1, 0_u64..)
            .into_stream()
            .take(4)
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(first, [1, 2, 3, 4]);

    let mut seen: Vec<(usize, u64)> = within(
        LIMIT,
        pool.imap_unordered(nap, [40, 1, 20, 2])
            .into_stream()
            .map(|(index, outcome)| (index, outcome.unwrap()))
            .collect::<Vec<_>>(),
    )
    .await;
    seen.sort_unstable();
    assert_eq!(seen, [(0, 40), (1, 1), (2, 20), (3, 2)]);

    // A failing task is one item of the stream; the rest go on.
    let outcomes: Vec<_> = within(
        LIMIT,
        pool.imap(|x: u32| 6 / x, [1, 0, 2])
            .into_stream()
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(*outcomes[0].as_ref().unwrap(), 6);
    assert!(outcomes[1].as_ref().unwrap_err().is_panic());
    assert_eq!(*outcomes[2].as_ref().unwrap(), 3);
}

#[tokio::test]
async fn timeouts_and_deadlines_while_awaited() {
    let pool = Pool::builder()
        .workers(2)
        .task_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    let outcomes = within(LIMIT, pool.map_async(nap, [60_000, 1]).unwrap().each()).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcomes[0].as_ref().unwrap_err().kind(), Kind::Timeout);
    assert_eq!(*outcomes[1].as_ref().unwrap(), 1);

    // A deadline set before the call is awaited.
    let pool = Pool::new(1).unwrap();
    pool.set_deadline(Some(Instant::now() + Duration::from_millis(100)));
    let started = Instant::now();
    let err = within(LIMIT, pool.apply_async(nap, (60_000,)).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Kind::Deadline);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_deadline_set_while_a_call_is_awaited_applies_at_once() {
    let pool = Pool::new(1).unwrap();
    let stuck = pool.apply_async(nap, (20_000,)).unwrap();
    // Set while the call is being awaited: "it applies at once, also to calls already running".
    let setter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            pool.set_deadline(Some(Instant::now() + Duration::from_millis(100)));
        })
    };
    let started = Instant::now();
    let outcome = within(LIMIT, stuck).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.unwrap_err().kind(), Kind::Deadline);
    setter.await.unwrap();
}

#[tokio::test]
async fn awaited_one_off_workers() {
    let a = nap::spawn(30).unwrap();
    let b = price_order::spawn(sample_order("x", vec![])).unwrap();
    assert_eq!(within(LIMIT, a).await.unwrap(), 30);
    assert!(within(LIMIT, b).await.unwrap().is_err());

    // `tokio::time::timeout(limit, handle)` is the async `join_timeout`: the worker is killed.
    let stuck = nap::spawn(60_000).unwrap();
    let pid = stuck.pid();
    let started = Instant::now();
    assert!(tokio::time::timeout(Duration::from_millis(100), stuck)
        .await
        .is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Killed, and reaped, though not by the time the drop returns (see the report).
    let gone = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < gone, "{pid} was left behind");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Spawned onto the runtime, too.
    let handle = tokio::spawn(nap::spawn(5).unwrap().into_future());
    assert_eq!(within(LIMIT, handle).await.unwrap().unwrap(), 5);
}

#[tokio::test]
async fn more_than_500_awaited_calls_at_once_on_one_pool() {
    // As a handler awaits one call per record of a large Kinesis batch; the tasks take a few
    // ms, so that all the calls wait at once.
    let pool = Pool::new(2).unwrap();
    let calls: Vec<_> = (0..600_u64)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.apply_async(nap, (n % 5,))?.await })
        })
        .collect();
    for (n, call) in (0..600_u64).zip(calls) {
        let outcome = within(LIMIT, call).await.unwrap();
        assert_eq!(
            outcome.map_err(|err| format!("call {n}: {err:?}")),
            Ok(n % 5)
        );
    }
}
