//! Callers of one pool proceed together: calls from several threads or tokio tasks share its
//! workers, none waits for another's whole call, and `workers()` and `set_deadline()` never
//! wait for a task. Dropping an awaited call cancels its queued tasks.
//!
//! The time bounds are generous on purpose: each is well under what the calls would take one
//! after another, so a test fails when callers are serialized, not when the machine is slow.

use std::future::IntoFuture;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{mark, wait_for, TempDir};

#[lambda_parallel]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Marks `dir/name` as started, then naps.
#[lambda_parallel]
fn marked_nap(dir: PathBuf, name: String, ms: u64) {
    mark(&dir, &name);
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn four_threads_mapping_at_once_share_the_workers() {
    // 16 tasks of 100 ms on 8 workers: 200 ms shared; one call at a time, 400 ms or more.
    let pool = Pool::new(8).unwrap();
    let start = Arc::new(Barrier::new(4));
    let began = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (pool, start) = (pool.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                pool.map(nap, [100; 4]).unwrap()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), [100; 4]);
    }
    let took = began.elapsed();
    assert!(took < Duration::from_millis(600), "four maps took {took:?}");
}

#[test]
fn workers_and_set_deadline_do_not_wait_for_a_running_map() {
    let dir = TempDir::new("accessors");
    let pool = Pool::new(2).unwrap();
    let map = {
        let (pool, path) = (pool.clone(), dir.path().to_owned());
        std::thread::spawn(move || {
            let inputs = (0..2).map(|i| (path.clone(), format!("started-{i}"), 2_000));
            pool.starmap(marked_nap, inputs).unwrap();
        })
    };
    for i in 0..2 {
        let started = wait_for(dir.path(), &format!("started-{i}"), Duration::from_secs(30));
        assert!(started, "task {i} never started");
    }
    // Both tasks run for two seconds now, and the map's caller waits on the pool. The bound
    // is far below the task's length, so that a busy machine does not fail the test: what it
    // catches is a call that waits for the map.
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let began = Instant::now();
        assert_eq!(pool.workers(), 2);
        pool.set_deadline(None);
        let _ = pool.is_closed();
        let _ = format!("{pool:?}");
        slowest = slowest.max(began.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(100),
        "an accessor took {slowest:?}"
    );
    map.join().unwrap();
}

#[test]
fn awaited_maps_share_the_workers_and_the_runtime_keeps_ticking() {
    // One thread, and at most one blocking thread: a pool call that held a thread for its
    // duration would serialize the eight calls (800 ms or more) and stall the ticker.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pool = Pool::new(8).unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (took, widest_gap) = runtime.block_on(async {
        let ticker = {
            let (ticks, stop) = (Arc::clone(&ticks), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut widest = Duration::ZERO;
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    widest = widest.max(last.elapsed());
                    last = Instant::now();
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
                widest
            })
        };
        let began = Instant::now();
        let calls: Vec<_> = (0..8)
            .map(|_| tokio::spawn(pool.map_async(nap, [100, 100]).unwrap().into_future()))
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), [100, 100]);
        }
        let took = began.elapsed();
        stop.store(true, Ordering::Relaxed);
        (took, ticker.await.unwrap())
    });
    assert!(
        took < Duration::from_millis(600),
        "eight awaited maps took {took:?}"
    );
    let ticks = ticks.load(Ordering::Relaxed);
    // About 20 ticks in 200 ms; a runtime thread blocked for a 100 ms task would show as a gap.
    assert!(ticks >= 5, "the ticker ticked {ticks} times in {took:?}");
    assert!(
        widest_gap < Duration::from_millis(90),
        "the ticker stalled for {widest_gap:?}"
    );
}

#[test]
fn dropping_an_awaited_map_cancels_its_queued_tasks() {
    let dir = TempDir::new("cancel");
    // One worker and one task a batch: the worker holds at most two batches (the one it runs
    // and the next), and the other eight stay queued.
    let pool = Pool::builder().workers(1).chunk_size(1).build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = dir.path().to_owned();
    let inputs = (0..10).map(|i| (path.clone(), format!("ran-{i}"), 300));
    let call = pool.starmap_async(marked_nap, inputs).unwrap();
    let outcome = runtime.block_on(async {
        assert!(wait_for(dir.path(), "ran-0", Duration::from_secs(30)));
        tokio::time::timeout(Duration::from_millis(50), call.into_future()).await
    });
    assert!(outcome.is_err(), "the call finished: {outcome:?}");
    // A call after the cancelled one runs after whatever the worker already held.
    assert_eq!(pool.apply(nap, (0,)).unwrap(), 0);
    let ran = dir.names();
    assert!(
        (1..=2).contains(&ran.len()),
        "tasks that ran after the cancel: {ran:?}"
    );
}

#[test]
fn a_short_call_is_not_held_behind_a_long_one() {
    // Round robin between calls: a two-task call submitted after a call of 40 tasks of 50 ms
    // on 2 workers gets its turn at once, rather than after the whole first call (1 s).
    let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
    let long = pool.map_async(nap, [50; 40]).unwrap();
    let began = Instant::now();
    assert_eq!(pool.map(nap, [1, 1]).unwrap(), [1, 1]);
    let took = began.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "the short call took {took:?}"
    );
    assert_eq!(long.get().unwrap(), [50; 40]);
}
