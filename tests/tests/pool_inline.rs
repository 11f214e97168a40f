//! `Pool::new(0)` runs tasks in the calling thread, and still sends every value through the codec,
//! so that unit tests see serialization mistakes as the workers would.
//!
//! No test in this binary forks: whatever the runtime sets up on the way to a first worker
//! (its panic hook, say) has not happened here, so inline mode must do without it.

use std::collections::BTreeMap;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{Flattened, Untagged};

#[lambda_parallel]
fn pid(_task: u32) -> u32 {
    std::process::id()
}

#[test]
fn inline_pool_runs_tasks_in_the_callers_process() {
    let pool = Pool::new(0).unwrap();
    assert_eq!(pool.workers(), 0);
    assert!(pool.pids().is_empty());
    let pids = pool.map(pid, 0..5).unwrap();
    assert_eq!(pids, [std::process::id(); 5]);
    assert_eq!(pool.apply(pid, (0,)).unwrap(), std::process::id());
}

#[lambda_parallel]
fn double(x: u64) -> u64 {
    2 * x
}

#[test]
fn inline_pool_serves_every_entry_point() {
    let pool = Pool::new(0).unwrap();
    assert_eq!(pool.map(double, 0..3).unwrap(), [0, 2, 4]);
    assert_eq!(pool.starmap(|a: u8, b: u8| a * b, [(2, 3)]).unwrap(), [6]);
    assert_eq!(pool.apply_async(double, (4,)).unwrap().get().unwrap(), 8);
    assert_eq!(pool.map_async(double, [5]).unwrap().get().unwrap(), [10]);
    let ordered: Vec<u64> = pool.imap(double, 0..4).map(Result::unwrap).collect();
    assert_eq!(ordered, [0, 2, 4, 6]);
    let mut unordered: Vec<usize> = pool.imap_unordered(double, 0..4).map(|(i, _)| i).collect();
    unordered.sort_unstable();
    assert_eq!(unordered, [0, 1, 2, 3]);
}

#[lambda_parallel]
fn returns_untagged(x: u32) -> Untagged {
    Untagged::Number(x)
}

#[test]
fn inline_pool_reports_a_result_that_cannot_be_decoded_as_a_codec_error() {
    let pool = Pool::new(0).unwrap();
    let err = pool.map(returns_untagged, [1]).unwrap_err();
    assert!(err.is_codec(), "{err}");
    assert_eq!(err.task_index(), Some(0));
    assert!(
        err.to_string().starts_with(
            "failed to decode the result of task 0 of worker `pool_inline::returns_untagged`: "
        ),
        "{err}"
    );
}

#[test]
fn inline_pool_reports_an_argument_that_cannot_be_encoded_as_a_codec_error() {
    let pool = Pool::new(0).unwrap();
    let input = Flattened {
        id: 1,
        extra: BTreeMap::new(),
    };
    let outcomes = pool.map_each(|f: Flattened| f.id, [input]);
    let err = outcomes[0].as_ref().unwrap_err();
    assert!(err.is_codec(), "{err}");
}

#[lambda_parallel]
fn panics(message: String) -> u32 {
    panic!("{message}")
}

#[test]
fn inline_pool_turns_a_panic_into_an_error_with_message_and_location() {
    let line = line!() - 5;
    let pool = Pool::new(0).unwrap();
    let err = pool.apply(panics, ("disk full".to_owned(),)).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("disk full"));
    let location = err.panic_location().expect("the location of the panic");
    assert_eq!((location.file(), location.line()), (file!(), line));
    // The pool goes on.
    assert_eq!(pool.apply(double, (1,)).unwrap(), 2);
}

#[lambda_parallel]
fn checked(input: String) -> Result<u32, String> {
    input.parse().map_err(|_| format!("not a number: {input}"))
}

#[test]
fn inline_pool_returns_a_workers_typed_err_as_a_value() {
    let pool = Pool::new(0).unwrap();
    let parsed = pool.map(checked, ["7".into(), "x".into()]).unwrap();
    assert_eq!(parsed, [Ok(7), Err("not a number: x".into())]);
}
