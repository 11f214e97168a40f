//! The blocking pool calls, as a user calls them: `map`, `map_each`, `imap`, `imap_unordered`,
//! `starmap`, `apply`, the `_async` handles waited on with `get`, and the pool's life.

use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Kind, Pool};
use outsider::{item, price_order, sample_order, Line, OrderError, Receipt, Shipping};

fn orders() -> Vec<outsider::Order> {
    (0..40)
        .map(|n| {
            let mut order = sample_order(
                &format!("o-{n}"),
                vec![
                    item(n, n + 1, 250),
                    Line::Shipping {
                        method: Shipping::Named("express".into()),
                    },
                ],
            );
            if n % 4 == 0 {
                order.coupon = Some("TENOFF".into());
            }
            order
        })
        .collect()
}

/// A receipt without its audit trail, which names the pid that priced it.
fn without_audit(receipt: &Receipt) -> Receipt {
    Receipt {
        audit: serde_json::Value::Null,
        ..receipt.clone()
    }
}

#[test]
fn map_gives_what_the_plain_call_gives_in_input_order_from_other_processes() {
    let pool = Pool::new(2).unwrap();
    let remote = pool.map(price_order, orders()).unwrap();
    let local: Vec<_> = orders().into_iter().map(price_order).collect();
    assert_eq!(remote.len(), 40);
    for (remote, local) in remote.iter().zip(&local) {
        let (remote, local) = (remote.as_ref().unwrap(), local.as_ref().unwrap());
        assert_eq!(without_audit(remote), without_audit(local));
        let pid = remote.audit["pid"].as_u64().unwrap();
        assert_ne!(pid, u64::from(std::process::id()), "ran in this process");
        assert!(
            pool.pids().contains(&(pid as u32)),
            "ran outside the pool's workers"
        );
        assert_eq!(remote.audit["extra"], local.audit["extra"]);
    }
}

#[test]
fn map_each_keeps_every_outcome_apart() {
    let pool = Pool::new(2).unwrap();
    let orders = vec![
        sample_order("ok", vec![item(1, 2, 100)]),
        sample_order("empty", vec![]),
        sample_order("buggy", vec![item(666, 1, 1)]),
        sample_order("ok-too", vec![item(2, 1, 100)]),
    ];
    let outcomes = pool.map_each(price_order, orders);
    assert_eq!(outcomes.len(), 4);
    let first = outcomes[0].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(first.total_micro_cents, 200 * 1_000_000);
    // The worker's own typed error arrives as a value.
    assert_eq!(
        outcomes[1].as_ref().unwrap(),
        &Err(OrderError::Empty {
            order_id: "empty".into()
        })
    );
    let panic = outcomes[2].as_ref().unwrap_err();
    assert!(panic.is_panic());
    assert_eq!(panic.kind(), Kind::Panic);
    assert_eq!(panic.panic_message(), Some("no price for SKU 666"));
    assert_eq!(panic.task_index(), Some(2));
    assert_eq!(panic.worker(), "outsider::price_order");
    assert!(panic.panic_location().unwrap().file().ends_with("lib.rs"));
    assert!(outcomes[3].as_ref().unwrap().is_ok());
}

#[test]
fn map_fails_fast_with_the_lowest_failed_index() {
    let pool = Pool::new(2).unwrap();
    let mut orders = orders();
    orders[31].lines.push(item(666, 1, 1));
    orders[17].lines.push(item(666, 1, 1));
    let err = pool.map(price_order, orders).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.task_index(), Some(17));
    // The pool is still fine afterwards.
    assert_eq!(pool.map(|x: u8| x + 1, [1, 2]).unwrap(), [2, 3]);
}

#[test]
fn one_order_at_a_time_with_pauses_between_gets_every_answer() {
    // A handler that prices one order per call, idle between invocations: the round trips of a
    // lone task, which both ends spin for, with the worker's typed errors, a panic and receipts
    // too large for the shared ring (they come on the pipe) among them.
    let pool = Pool::new(2).unwrap();
    let mut big = sample_order("big", (1_000..101_000).map(|sku| item(sku, 1, 3)).collect());
    big.coupon = Some("TENOFF".into());
    for round in 0..3_u32 {
        // The pause between two invocations of the function.
        std::thread::sleep(Duration::from_millis(50));
        for n in 0..300 {
            let order = sample_order(
                &format!("o-{round}-{n}"),
                vec![item(1_000 + n, round + 1, 25)],
            );
            let expected = price_order(order.clone()).unwrap();
            let receipt = pool.apply(price_order, (order,)).unwrap().unwrap();
            assert_eq!(without_audit(&receipt), without_audit(&expected));
        }
        // 100,000 entries of at least 4 bytes: more than the ring's 256 KiB.
        let receipt = pool.apply(price_order, (big.clone(),)).unwrap().unwrap();
        assert_eq!(receipt.quantity_by_sku.len(), 100_000);
        assert_eq!(receipt.total_micro_cents, 100_000 * 3 * 1_000_000 * 9 / 10);
        let mut refused = sample_order("refused", vec![item(1, 1, 1)]);
        refused.coupon = Some("FREE".into());
        assert_eq!(
            pool.apply(price_order, (refused,)).unwrap(),
            Err(OrderError::UnknownCoupon("FREE".into()))
        );
        let panicked = pool
            .apply(price_order, (sample_order("buggy", vec![item(666, 1, 1)]),))
            .unwrap_err();
        assert_eq!(panicked.panic_message(), Some("no price for SKU 666"));
        // And the next small one comes straight after the large one and the failures.
        let after = sample_order("after", vec![item(5, 2, 50)]);
        assert_eq!(
            pool.apply(price_order, (after,))
                .unwrap()
                .unwrap()
                .total_micro_cents,
            100 * 1_000_000
        );
    }
}

/// Three arguments, one of them a tuple pattern.
#[lambda_parallel]
fn line_total((sku, quantity): (u32, u32), unit_cents: u64, label: String) -> (String, u32, u64) {
    (label, sku, u64::from(quantity) * unit_cents)
}

#[test]
fn starmap_and_starmap_each_and_apply() {
    let pool = Pool::new(2).unwrap();
    let inputs = vec![((1, 2), 10, "a".to_owned()), ((3, 4), 5, "b".to_owned())];
    let totals = pool.starmap(line_total, inputs.clone()).unwrap();
    assert_eq!(totals, [("a".into(), 1, 20), ("b".into(), 3, 20)]);
    // The companion struct, too.
    assert_eq!(pool.starmap(line_total::TASK, inputs).unwrap(), totals);
    let each = pool.starmap_each(|a: u32, b: u32| a / b, [(6, 3), (1, 0)]);
    assert_eq!(*each[0].as_ref().unwrap(), 2);
    assert!(each[1].as_ref().unwrap_err().is_panic());
    let one = pool.apply(line_total, ((9, 9), 1, "c".into())).unwrap();
    assert_eq!(one, ("c".into(), 9, 9));
    // A zero-argument closure.
    assert_eq!(pool.apply(|| 7_u8, ()).unwrap(), 7);
}

#[test]
fn imap_reads_its_input_lazily_even_when_it_never_ends() {
    let pool = Pool::new(2).unwrap();
    let total: u64 = pool
        .imap(|x: u64| x * x, 1..=20_000)
        .map(Result::unwrap)
        .sum();
    assert_eq!(total, (1..=20_000_u64).map(|x| x * x).sum::<u64>());
    // An endless input: only what is taken is computed.
    let first: Vec<u64> = pool
        .imap(|x: u64| x + 1, 0_u64..)
        .take(5)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, [1, 2, 3, 4, 5]);
    // and the pool is free again at once.
    assert_eq!(pool.apply(|x: u8| x, (3,)).unwrap(), 3);
}

#[test]
fn imap_unordered_yields_every_index_once() {
    let pool = Pool::new(2).unwrap();
    let mut seen: Vec<(usize, u64)> = pool
        .imap_unordered(
            |ms: u64| {
                std::thread::sleep(Duration::from_millis(ms));
                ms
            },
            [30, 1, 20, 2, 10, 3],
        )
        .map(|(index, outcome)| (index, outcome.unwrap()))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, [(0, 30), (1, 1), (2, 20), (3, 2), (4, 10), (5, 3)]);
}

#[test]
fn the_async_handles_block_with_get() {
    let pool = Pool::new(2).unwrap();
    let mut squares = pool.map_async(|x: u32| x * x, 1..=50).unwrap();
    assert!(squares.wait(Duration::from_secs(30)));
    assert!(squares.ready());
    assert_eq!(
        squares.get().unwrap(),
        (1..=50).map(|x| x * x).collect::<Vec<_>>()
    );

    let outcomes = pool.map_async(|x: u32| 10 / x, [1, 0]).unwrap().get_each();
    assert_eq!(*outcomes[0].as_ref().unwrap(), 10);
    assert!(outcomes[1].as_ref().unwrap_err().is_panic());

    let mut sum = pool.apply_async(|a: u32, b: u32| a + b, (2, 3)).unwrap();
    while !sum.ready() {
        std::thread::yield_now();
    }
    assert_eq!(sum.get().unwrap(), 5);

    let stuck = pool
        .apply_async(|()| std::thread::sleep(Duration::from_secs(60)), ((),))
        .unwrap();
    let started = Instant::now();
    let err = stuck.get_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(err.is_timeout());
    assert!(started.elapsed() < Duration::from_secs(10));
    // The stuck worker was killed and replaced.
    assert_eq!(pool.map(|x: u8| x, [1, 2, 3]).unwrap(), [1, 2, 3]);
    assert_eq!(pool.pids().len(), 2);
}

#[test]
fn an_inline_pool_runs_in_this_process_and_still_encodes() {
    let pool = Pool::new(0).unwrap();
    let receipt = pool
        .apply(price_order, (sample_order("inline", vec![item(1, 1, 1)]),))
        .unwrap()
        .unwrap();
    assert_eq!(receipt.audit["pid"], std::process::id());
    assert_eq!(pool.map(|x: u32| x * 2, [1, 2]).unwrap(), [2, 4]);
}

#[test]
fn max_tasks_per_worker_replaces_workers() {
    let pool = Pool::builder()
        .workers(2)
        .max_tasks_per_worker(1)
        .chunk_size(1)
        .build()
        .unwrap();
    let mut pids = pool.map(|_: u8| std::process::id(), 0..6).unwrap();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 6, "each task had a fresh worker: {pids:?}");
}

#[test]
fn many_threads_share_one_pool() {
    let pool = Pool::new(2).unwrap();
    let threads: Vec<_> = (0..8_u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || pool.map(|x: u64| x * 3, t * 100..t * 100 + 100))
        })
        .collect();
    for (t, thread) in (0..8_u64).zip(threads) {
        let expected: Vec<u64> = (t * 100..t * 100 + 100).map(|x| x * 3).collect();
        assert_eq!(thread.join().unwrap().unwrap(), expected);
    }
}

#[test]
fn workers_debug_and_set_deadline_never_wait_behind_a_running_map() {
    let pool = Pool::new(2).unwrap();
    let busy = pool.clone();
    let map = std::thread::spawn(move || {
        busy.map(
            |ms: u64| std::thread::sleep(Duration::from_millis(ms)),
            [700, 700],
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    assert_eq!(pool.workers(), 2);
    assert!(format!("{pool:?}").contains("workers: 2"));
    pool.set_deadline(None);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    map.join().unwrap().unwrap();
}

#[test]
fn close_join_and_terminate() {
    let pool = Pool::new(1).unwrap();
    let pending = pool.map_async(|x: u32| x, [1, 2]).unwrap();
    pool.clone().join();
    assert_eq!(pending.get().unwrap(), [1, 2]);
    assert!(pool.is_closed());
    let err = pool.apply(|x: u32| x, (1,)).unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.kind(), Kind::Closed);

    let pool = Pool::new(2).unwrap();
    let pids = pool.pids();
    pool.clone().terminate();
    assert!(pool.pids().is_empty());
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} was left behind"
        );
    }
}

#[test]
fn dropping_the_pool_kills_and_reaps_its_workers_at_once() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.pids();
    let pending = pool
        .map_async(|()| std::thread::sleep(Duration::from_secs(60)), [(), ()])
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    drop(pending);
    drop(pool);
    assert!(started.elapsed() < Duration::from_secs(5));
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} was left behind"
        );
    }
}
