//! Awaited pool calls never strand a queued task, nor miss a deadline set while they wait, and
//! any number of them wait at once (the last ones below): a batch queued when every worker is idle and
//! nobody sleeps in `poll` (by the stream's own feed, or put back after a worker died or was
//! retired) still goes out, with no worker's news to prompt it.
//!
//! Each call runs under a timeout far above what it takes (well under a second), so that a
//! stranded task fails the test with the call named instead of hanging the run.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::Context;
use std::time::{Duration, Instant};

use futures_core::Stream;
use lambda_parallel::{lambda_parallel, Pool};

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

/// Aborts the worker on the inputs it is told to.
#[lambda_parallel]
fn square_or_abort(x: u64, abort: bool) -> u64 {
    if abort {
        std::process::abort();
    }
    x * x
}

/// Far above what any call here takes: reached only when a task was stranded.
const STRANDED: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the runtime starts")
}

/// `StreamExt::next`, without the dependency.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx: &mut Context<'_>| Pin::new(&mut *stream).poll_next(cx)).await
}

/// Runs `call` on `runtime`, failing the test with `what` if it does not end.
fn within<T>(runtime: &tokio::runtime::Runtime, what: &str, call: impl Future<Output = T>) -> T {
    runtime
        .block_on(async { tokio::time::timeout(STRANDED, call).await })
        .unwrap_or_else(|_| panic!("{what} stranded a task: no outcome in {STRANDED:?}"))
}

#[test]
fn a_stream_hands_out_what_it_feeds_while_every_worker_is_idle() {
    // The stream feeds its next inputs as it yields outcomes that one step brought; with one
    // worker, that worker is idle by then. Before the fix this hung within the first rounds.
    let runtime = runtime();
    for workers in [1, 2, 3] {
        let pool = Pool::new(workers).unwrap();
        for round in 0..100 {
            let what = format!("imap round {round} on {workers} workers");
            let total = within(&runtime, &what, async {
                let mut squares = pool.imap(square, 1..=100).into_stream();
                let mut total = 0;
                while let Some(square) = next(&mut squares).await {
                    total += square.unwrap();
                }
                total
            });
            assert_eq!(total, 338_350, "{what}");
        }
    }
}

#[test]
fn an_unordered_stream_hands_out_what_it_feeds() {
    let runtime = runtime();
    let pool = Pool::new(1).unwrap();
    for round in 0..100 {
        let what = format!("imap_unordered round {round}");
        let mut seen = within(&runtime, &what, async {
            let mut squares = pool.imap_unordered(square, 0..50).into_stream();
            let mut seen = Vec::new();
            while let Some((index, square)) = next(&mut squares).await {
                assert_eq!(square.unwrap(), (index * index) as u64);
                seen.push(index);
            }
            seen
        });
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>(), "{what}");
    }
}

#[test]
fn tasks_put_back_after_a_crash_go_out_to_the_new_worker() {
    // One worker, chunks of one: the worker holds two batches when it aborts on the first, so
    // the second goes back to the queue, for the worker that replaces it. (This one passed
    // before the fix too: the crash's two signals, the pipe's end and the pidfd, come in two
    // steps, and the second hands the batch out. The retired worker below has no such luck.)
    let runtime = runtime();
    let pool = Pool::builder().workers(1).chunk_size(1).build().unwrap();
    for round in 0..20 {
        let inputs = (0..6).map(|x| (x, x == 0));
        let outcomes = within(&runtime, &format!("round {round}"), async {
            let call = pool.starmap_async(square_or_abort, inputs).unwrap();
            call.each().await
        });
        let crash = outcomes[0].as_ref().unwrap_err();
        assert_eq!(crash.signal(), Some(6), "{crash}");
        let rest: Vec<u64> = outcomes[1..].iter().map(|o| *o.as_ref().unwrap()).collect();
        assert_eq!(rest, [1, 4, 9, 16, 25], "round {round}");
    }
}

#[test]
fn tasks_go_on_after_a_worker_is_retired() {
    // A worker retires after two tasks; what is queued behind it waits for its replacement.
    let runtime = runtime();
    let pool = Pool::builder()
        .workers(1)
        .chunk_size(1)
        .max_tasks_per_worker(2)
        .build()
        .unwrap();
    for round in 0..20 {
        let squares = within(&runtime, &format!("round {round}"), async {
            pool.map_async(square, 0..7).unwrap().into_future().await
        });
        assert_eq!(squares.unwrap(), [0, 1, 4, 9, 16, 25, 36], "round {round}");
    }
}

#[lambda_parallel]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn a_deadline_set_while_a_call_is_awaited_applies_at_once() {
    // The call sleeps on the reactor and a timer for the deadline it saw (none); a deadline set
    // meanwhile must wake it to set its timer anew, as it stops a blocking call.
    let runtime = runtime();
    let pool = Pool::new(1).unwrap();
    let began = Instant::now();
    let outcome = within(&runtime, "a 20 s task under a 100 ms deadline", async {
        let stuck = pool.apply_async(nap, (20_000,)).unwrap();
        let setter = pool.clone();
        let set = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            setter.set_deadline(Some(Instant::now() + Duration::from_millis(100)));
        });
        let outcome = stuck.await;
        set.await.unwrap();
        outcome
    });
    let took = began.elapsed();
    let err = outcome.unwrap_err();
    assert_eq!(
        err.kind(),
        lambda_parallel::Kind::Deadline,
        "{err} (took {took:?})"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A runtime with two worker threads, where awaited calls poll from several threads at once.
fn threaded_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the runtime starts")
}

#[test]
fn six_hundred_calls_await_one_pool_at_once() {
    // Linux lets an epoll set hold only about 500 registrations of nested epoll sets that lead
    // to one descriptor: the calls share the pool's one registration with the runtime.
    for runtime in [runtime(), threaded_runtime()] {
        let pool = Pool::new(2).unwrap();
        let outcomes = within(&runtime, "600 awaited calls", async {
            let calls: Vec<_> = (0..600_u64)
                .map(|n| {
                    let pool = pool.clone();
                    tokio::spawn(async move { pool.apply_async(nap, (n % 3,))?.await })
                })
                .collect();
            let mut outcomes = Vec::new();
            for call in calls {
                outcomes.push(call.await.unwrap());
            }
            outcomes
        });
        for (n, outcome) in (0..600_u64).zip(outcomes) {
            assert_eq!(outcome.map_err(|err| format!("call {n}: {err}")), Ok(n % 3));
        }
    }
}

#[test]
fn calls_dropped_while_they_wait_leave_the_others_awake() {
    // The reactor wakes only the call that polled the pool's registration last; when that
    // call is dropped, another must take its place, or the rest sleep for good.
    let runtime = threaded_runtime();
    let pool = Pool::new(2).unwrap();
    let kept = within(&runtime, "the calls not dropped", async {
        let calls: Vec<_> = (0..40_u64)
            .map(|n| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.apply_async(nap, (20 + n % 2,))?.await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut kept = Vec::new();
        for (n, call) in calls.into_iter().enumerate() {
            if n % 2 == 1 {
                call.abort();
            } else {
                kept.push(call);
            }
        }
        let mut outcomes = Vec::new();
        for call in kept {
            outcomes.push(call.await.unwrap());
        }
        outcomes
    });
    assert_eq!(kept.len(), 20);
    assert!(kept
        .into_iter()
        .all(|outcome| outcome.is_ok_and(|ms| ms == 20)));
}
