//! One-off workers: `f::spawn(..)`, `join`, `join_timeout`, `kill`, `pid`, `is_finished`, and
//! dropping the handle.

use std::path::Path;
use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, JoinHandle, Kind};
use outsider::{item, price_order, sample_order, OrderError};

#[lambda_parallel]
fn nap(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

/// No arguments, no return value.
#[lambda_parallel]
fn nothing() {}

/// Spawns the pricing of an order with no lines, which the worker refuses with its own typed
/// error, inside the `Ok`.
fn empty_order_is_refused(order_id: &str) {
    let typed = price_order::spawn(sample_order(order_id, vec![]))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        typed,
        Err(OrderError::Empty {
            order_id: order_id.into()
        })
    );
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn the_plain_call_and_the_spawned_one_agree() {
    let order = sample_order("s-1", vec![item(3, 2, 50)]);
    let local = price_order(order.clone()).unwrap();
    let handle: JoinHandle<Result<outsider::Receipt, OrderError>> =
        price_order::spawn(order).unwrap();
    let pid = handle.pid();
    assert_ne!(pid, std::process::id());
    let remote = handle.join().unwrap().unwrap();
    assert_eq!(remote.total_micro_cents, local.total_micro_cents);
    assert_eq!(remote.quantity_by_sku, local.quantity_by_sku);
    assert_eq!(remote.audit["pid"], pid);

    // The worker's own error, typed, inside the Ok.
    empty_order_is_refused("s-2");
    nothing::spawn().unwrap().join().unwrap();
}

#[test]
fn join_timeout_kills_and_reaps() {
    let handle = nap::spawn(60_000).unwrap();
    let pid = handle.pid();
    let started = Instant::now();
    let err = handle.join_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.kind(), Kind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(gone(pid), "{pid} was left behind");

    // In time: the result.
    let handle = nap::spawn(1).unwrap();
    let pid = handle.pid();
    assert_eq!(handle.join_timeout(Duration::from_secs(30)).unwrap(), pid);
}

#[test]
fn kill_then_join_reports_sigkill() {
    let mut handle = nap::spawn(60_000).unwrap();
    assert!(!handle.is_finished());
    handle.kill().unwrap();
    let err = handle.join().unwrap_err();
    assert_eq!(err.signal(), Some(9));
    assert_eq!(err.signal_name(), Some("SIGKILL"));
    assert_eq!(err.kind(), Kind::Signal);
}

#[test]
fn is_finished_once_the_worker_ends() {
    let handle = nap::spawn(10).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while !handle.is_finished() {
        assert!(Instant::now() < until, "never finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(handle.join().unwrap() > 0);
}

#[test]
fn dropping_the_handle_kills_and_reaps() {
    let handle = nap::spawn(60_000).unwrap();
    let pid = handle.pid();
    assert!(!gone(pid));
    let started = Instant::now();
    drop(handle);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(gone(pid), "{pid} was left behind");
}

#[test]
fn a_panicking_one_off_worker() {
    let err = price_order::spawn(sample_order("p", vec![item(666, 1, 1)]))
        .unwrap()
        .join()
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("no price for SKU 666"));
    assert_eq!(err.task_index(), None);
    let err = price_order::spawn(sample_order("a", vec![item(999, 1, 1)]))
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(err.signal_name(), Some("SIGABRT"));
}

#[test]
fn many_one_off_workers_at_once() {
    let handles: Vec<_> = (0..32).map(|ms| nap::spawn(ms).unwrap()).collect();
    let mut pids: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 32);
}

#[test]
fn quick_and_slow_one_offs_joined_from_several_threads_with_tight_timeouts() {
    // A blocking join watches for a quick answer before it sleeps, one thread of the process at
    // a time. From four threads at once: quick orders (answered within that watch), a task
    // that outlasts it, a typed error, and a timeout far shorter than the watch; each thread
    // gets its own answers, and the timed-out worker is gone.
    std::thread::scope(|scope| {
        for t in 0..4_u32 {
            scope.spawn(move || {
                for n in 0..40_u32 {
                    let order = sample_order(&format!("q-{t}-{n}"), vec![item(1 + n, t + 1, 10)]);
                    let expected = price_order(order.clone()).unwrap();
                    let receipt = price_order::spawn(order).unwrap().join().unwrap().unwrap();
                    assert_eq!(receipt.total_micro_cents, expected.total_micro_cents);
                    assert_eq!(receipt.quantity_by_sku, expected.quantity_by_sku);
                }
                assert_ne!(nap::spawn(5).unwrap().join().unwrap(), std::process::id());
                empty_order_is_refused(&format!("e-{t}"));
                let handle = nap::spawn(60_000).unwrap();
                let pid = handle.pid();
                let err = handle.join_timeout(Duration::from_micros(50)).unwrap_err();
                assert!(err.is_timeout(), "{err}");
                assert!(gone(pid), "{pid} was left behind");
            });
        }
    });
}

#[test]
fn spawned_and_joined_on_another_thread() {
    // Without `init`, a one-off worker dies with the thread that spawned it: joined there, fine.
    let pid = std::thread::spawn(|| nap::spawn(20).unwrap().join().unwrap())
        .join()
        .unwrap();
    assert!(pid > 0);
}

#[lambda_parallel]
fn spawns_its_own(ms: u64) -> u32 {
    nap::spawn(ms).unwrap().join().unwrap()
}

#[lambda_parallel]
fn builds_its_own_pool(x: u32) -> Vec<u32> {
    let pool = lambda_parallel::Pool::new(1).unwrap();
    pool.map(|y: u32| y * 2, [x, x + 1]).unwrap()
}

#[test]
fn a_worker_can_start_workers_of_its_own() {
    let err = |e: lambda_parallel::Error| e.to_string();
    let nested = spawns_its_own::spawn(1)
        .unwrap()
        .join_timeout(Duration::from_secs(10));
    assert!(nested.map_err(err).unwrap() > 0);
    let pool = lambda_parallel::Pool::new(1).unwrap();
    let nested = pool.apply_async(spawns_its_own, (1,)).unwrap();
    assert!(
        nested
            .get_timeout(Duration::from_secs(10))
            .map_err(err)
            .unwrap()
            > 0
    );
    let nested = pool.apply_async(builds_its_own_pool, (5,)).unwrap();
    assert_eq!(
        nested
            .get_timeout(Duration::from_secs(10))
            .map_err(err)
            .unwrap(),
        [10, 12]
    );
}
