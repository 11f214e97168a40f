//! `lambda_parallel::init()` where the docs say to call it, first thing in `main`, before the
//! tokio runtime and its threads: then one-off and pool workers are forked from the fork
//! server. Without libtest's harness (`harness = false`), whose threads would come first.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Kind, Pool};
use outsider::{item, price_order, sample_order};
use serde::{Deserialize, Serialize, Serializer};

/// What the program has done so far: workers see it as it was at `init`.
static STAGE: AtomicU32 = AtomicU32::new(0);

#[lambda_parallel]
fn stage_seen() -> u32 {
    STAGE.load(Ordering::SeqCst)
}

#[lambda_parallel]
fn nap(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

#[lambda_parallel]
fn spawns_its_own(ms: u64) -> u32 {
    let pool = Pool::new(1).unwrap();
    pool.apply(nap, (ms,)).unwrap() + nap::spawn(ms).unwrap().join().unwrap()
}

#[lambda_parallel]
fn byte_sum(blob: Vec<u8>) -> (usize, u64) {
    (blob.len(), blob.iter().map(|b| u64::from(*b)).sum())
}

#[derive(Debug, Deserialize)]
struct Unsendable;

impl Serialize for Unsendable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be serialized",
        ))
    }
}

#[lambda_parallel]
fn takes_unsendable(_value: Unsendable) {}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn main() {
    STAGE.store(1, Ordering::SeqCst);
    lambda_parallel::init().expect("init, before any thread");
    lambda_parallel::init().expect("init again does nothing");
    STAGE.store(2, Ordering::SeqCst);
    let pool = Pool::new(2).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut passed = 0;
    let mut check = |name: &str, f: &dyn Fn()| {
        let started = Instant::now();
        f();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} took {:?}",
            started.elapsed()
        );
        passed += 1;
    };

    check("workers see the program as it was at init", &|| {
        assert_eq!(stage_seen::spawn().unwrap().join().unwrap(), 1);
        assert_eq!(pool.apply(stage_seen, ()).unwrap(), 1);
        assert_eq!(stage_seen(), 2);
    });

    check(
        "one-off workers, blocking and awaited, from the runtime's threads",
        &|| {
            runtime.block_on(async {
                let tasks: Vec<_> = (0..16_u64)
                    .map(|ms| tokio::spawn(async move { nap::spawn(ms)?.await }))
                    .collect();
                let mut pids = Vec::new();
                for task in tasks {
                    pids.push(task.await.unwrap().unwrap());
                }
                pids.sort_unstable();
                pids.dedup();
                assert_eq!(pids.len(), 16);
                let blocking = tokio::task::spawn_blocking(|| nap::spawn(1).unwrap().join());
                assert!(blocking.await.unwrap().unwrap() > 0);
            });
        },
    );

    check(
        "a one-off worker outlives the thread that spawned it",
        &|| {
            let handle = std::thread::spawn(|| nap::spawn(200).unwrap())
                .join()
                .unwrap();
            assert!(handle.join().unwrap() > 0);
        },
    );

    check(
        "arguments cross the server's request pipe whole, or fail as codec errors",
        &|| {
            let blob: Vec<u8> = (0..48_u32 << 20).map(|i| (i % 253) as u8).collect();
            let sum = blob.iter().map(|b| u64::from(*b)).sum::<u64>();
            assert_eq!(
                byte_sum::spawn(blob).unwrap().join().unwrap(),
                (48 << 20, sum)
            );
            let err = match takes_unsendable::spawn(Unsendable) {
                Err(err) => err,
                Ok(handle) => handle.join().unwrap_err(),
            };
            assert!(err.is_codec(), "{err}");
        },
    );

    check(
        "a pool on the fork server, awaited from the runtime, survives crashes",
        &|| {
            let orders = vec![
                sample_order("1", vec![item(1, 1, 1)]),
                sample_order("2", vec![item(999, 1, 1)]),
                sample_order("3", vec![item(666, 1, 1)]),
                sample_order("4", vec![item(2, 2, 2)]),
            ];
            let outcomes = runtime
                .block_on(async { pool.map_async(price_order, orders).unwrap().each().await });
            assert!(outcomes[0].as_ref().unwrap().is_ok());
            assert_eq!(
                outcomes[1].as_ref().unwrap_err().signal_name(),
                Some("SIGABRT")
            );
            assert_eq!(outcomes[2].as_ref().unwrap_err().kind(), Kind::Panic);
            assert!(outcomes[3].as_ref().unwrap().is_ok());
            assert_eq!(pool.pids().len(), 2);
        },
    );

    check(
        "killing, timing out and dropping a server's worker",
        &|| {
            let mut handle = nap::spawn(60_000).unwrap();
            handle.kill().unwrap();
            assert_eq!(handle.join().unwrap_err().signal(), Some(9));
            let handle = nap::spawn(60_000).unwrap();
            let pid = handle.pid();
            assert!(handle
                .join_timeout(Duration::from_millis(100))
                .unwrap_err()
                .is_timeout());
            assert!(
                gone_within(pid, Duration::from_secs(5)),
                "{pid} was left behind"
            );
            let handle = nap::spawn(60_000).unwrap();
            let pid = handle.pid();
            drop(handle);
            assert!(
                gone_within(pid, Duration::from_secs(5)),
                "{pid} was left behind"
            );
        },
    );

    check("a worker that starts workers of its own", &|| {
        let nested = spawns_its_own::spawn(1)
            .unwrap()
            .join_timeout(Duration::from_secs(10));
        assert!(nested.unwrap() > 0);
        let nested = pool.apply_async(spawns_its_own, (1,)).unwrap();
        assert!(nested.get_timeout(Duration::from_secs(10)).unwrap() > 0);
    });

    println!("fork_server: {passed} checks passed");
}
