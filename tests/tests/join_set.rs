//! A `JoinSet` of one-off workers: outcomes in the order the workers finish, each failure its
//! member's own `Err`, and no worker outliving the set.

use std::path::Path;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, JoinSet};
use lambda_parallel_tests::{children, mark, reaped_within, wait_for, TempDir};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the runtime starts")
}

/// Returns `value` once the file `name` exists in `dir`; `None` if it never came.
#[lambda_parallel]
fn when_released(dir: String, name: String, value: u32) -> Option<u32> {
    wait_for(Path::new(&dir), &name, Duration::from_secs(60)).then_some(value)
}

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[lambda_parallel]
fn fail(how: String) -> u64 {
    match how.as_str() {
        "panic" => panic!("member failed"),
        "abort" => std::process::abort(),
        _ => 7,
    }
}

#[lambda_parallel]
fn stuck() -> u64 {
    std::thread::sleep(Duration::from_secs(600));
    0
}

#[test]
fn join_next_returns_outcomes_in_the_order_workers_finish() {
    let dir = TempDir::new("join-set-order");
    let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
    let mut set = JoinSet::new();
    for value in 0..3 {
        let id = set
            .spawn(when_released, (path.clone(), format!("go-{value}"), value))
            .unwrap();
        assert_eq!(id, value as usize);
    }
    let order = runtime().block_on(async {
        let mut order = Vec::new();
        // Only the released worker can finish, so it must be the next outcome.
        for value in [2, 0, 1] {
            mark(dir.path(), &format!("go-{value}"));
            let (id, outcome) = set.join_next_with_id().await.expect("a member is left");
            assert_eq!(outcome.unwrap(), Some(value));
            order.push(id);
        }
        assert!(set.join_next().await.is_none());
        order
    });
    assert_eq!(order, [2, 0, 1]);
    assert!(set.is_empty());
}

#[test]
fn a_panicking_or_crashing_member_is_its_own_err_and_the_others_finish() {
    let mut set = JoinSet::new();
    for how in ["panic", "abort", "ok"] {
        set.spawn(fail, (how.to_owned(),)).unwrap();
    }
    let mut outcomes: Vec<_> = runtime().block_on(async {
        let mut outcomes = Vec::new();
        while let Some(next) = set.join_next_with_id().await {
            outcomes.push(next);
        }
        outcomes
    });
    outcomes.sort_by_key(|(id, _)| *id);
    let [(0, panicked), (1, aborted), (2, ok)] = &outcomes[..] else {
        panic!("three outcomes by id, not {outcomes:?}");
    };
    assert_eq!(
        panicked.as_ref().unwrap_err().panic_message(),
        Some("member failed")
    );
    assert_eq!(aborted.as_ref().unwrap_err().signal_name(), Some("SIGABRT"));
    assert_eq!(*ok.as_ref().unwrap(), 7);
}

#[test]
fn many_members_each_yield_one_outcome() {
    const MEMBERS: usize = 100;
    let mut set = JoinSet::new();
    for x in 0..MEMBERS as u64 {
        set.spawn(square, (x,)).unwrap();
    }
    assert_eq!(set.len(), MEMBERS);
    let mut ids = Vec::new();
    let total = runtime().block_on(async {
        let mut total = 0;
        while let Some((id, outcome)) = set.join_next_with_id().await {
            assert_eq!(outcome.unwrap(), (id as u64).pow(2));
            ids.push(id);
            total += 1;
        }
        total
    });
    assert_eq!(total, MEMBERS);
    ids.sort_unstable();
    assert_eq!(ids, (0..MEMBERS).collect::<Vec<_>>());
}

#[test]
fn dropping_the_set_on_the_runtime_kills_every_worker_and_leaves_no_zombie() {
    let runtime = runtime();
    let pids = runtime.block_on(async {
        let mut set = JoinSet::new();
        let mut pids = Vec::new();
        for _ in 0..5 {
            let handle = stuck::spawn().unwrap();
            pids.push(handle.pid());
            set.insert(handle);
        }
        set.spawn(square, (3,)).unwrap();
        assert_eq!(set.join_next().await.unwrap().unwrap(), 9);
        let live = children();
        assert!(pids.iter().all(|pid| live.contains(pid)));
        drop(set);
        pids
    });
    // The runtime lives on, so that its blocking threads reap what the drop killed.
    for pid in pids {
        assert!(
            reaped_within(pid, Duration::from_secs(5)),
            "worker {pid} outlived its set"
        );
    }
    drop(runtime);
}

#[test]
fn dropping_the_set_off_the_runtime_reaps_every_worker() {
    let mut set = JoinSet::new();
    let mut pids = Vec::new();
    for _ in 0..3 {
        let handle = stuck::spawn().unwrap();
        pids.push(handle.pid());
        set.insert(handle);
    }
    drop(set);
    let live = children();
    for pid in pids {
        assert!(!live.contains(&pid), "worker {pid} outlived its set");
    }
}

#[test]
fn abort_all_kills_running_members_which_still_yield_their_outcome() {
    let mut set = JoinSet::new();
    set.spawn(stuck, ()).unwrap();
    set.spawn(stuck, ()).unwrap();
    set.abort_all();
    assert_eq!(set.len(), 2);
    let signals = runtime().block_on(async {
        let mut signals = Vec::new();
        while let Some(outcome) = set.join_next().await {
            signals.push(outcome.unwrap_err().signal_name());
        }
        signals
    });
    assert_eq!(signals, [Some("SIGKILL"); 2]);
}

#[test]
fn shutdown_empties_the_set_and_reaps_every_worker() {
    let mut set = JoinSet::new();
    let mut pids = Vec::new();
    for _ in 0..3 {
        let handle = stuck::spawn().unwrap();
        pids.push(handle.pid());
        set.insert(handle);
    }
    runtime().block_on(set.shutdown());
    assert!(set.is_empty());
    let live = children();
    for pid in pids {
        assert!(!live.contains(&pid), "worker {pid} was not reaped");
    }
}

#[test]
fn a_set_can_be_moved_into_a_spawned_task() {
    let mut set = JoinSet::new();
    set.spawn(square, (5,)).unwrap();
    let outcome = runtime().block_on(async move {
        tokio::spawn(async move { set.join_next().await })
            .await
            .unwrap()
    });
    assert_eq!(outcome.unwrap().unwrap(), 25);
}

#[test]
fn join_next_waits_on_the_reactor_not_on_the_thread() {
    let dir = TempDir::new("join-set-reactor");
    let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
    let mut set = JoinSet::new();
    for value in 0..3 {
        set.spawn(when_released, (path.clone(), "go".to_owned(), value))
            .unwrap();
    }
    // One thread: the release comes from a task beside the awaiting one, which could never run
    // if `join_next` blocked the thread (the workers would then give up, returning `None`).
    let values = runtime().block_on(async {
        let releaser = tokio::spawn({
            let dir = dir.path().to_owned();
            async move {
                let mut interval = tokio::time::interval(Duration::from_millis(1));
                for _ in 0..10 {
                    interval.tick().await;
                }
                mark(&dir, "go");
            }
        });
        let mut values = Vec::new();
        while let Some(outcome) = set.join_next().await {
            values.push(outcome.unwrap());
        }
        releaser.await.unwrap();
        values
    });
    assert_eq!(values.len(), 3);
    assert!(
        values.iter().all(Option::is_some),
        "a worker gave up: {values:?}"
    );
}
