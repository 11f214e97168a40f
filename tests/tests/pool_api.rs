//! Every entry point of `Pool`, as `multiprocessing.Pool` users expect it to behave.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{children, mark, wait_for, TempDir};
use serde::{Deserialize, Serialize};

/// How long a task waits for the test to let it go before it gives up.
const LIMIT: Duration = Duration::from_secs(30);

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

/// Squares `x`, the later the smaller `x` is: outcomes arrive roughly in reverse input order.
#[lambda_parallel]
fn square_late(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5 * (10 - x)));
    x * x
}

#[lambda_parallel]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Panics on odd inputs.
#[lambda_parallel]
fn even_only(x: u64) -> u64 {
    assert!(x.is_multiple_of(2), "odd input {x}");
    x
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum ParseError {
    Empty,
    NotANumber(String),
}

#[lambda_parallel]
fn parse(input: String) -> Result<u32, ParseError> {
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    input.parse().map_err(|_| ParseError::NotANumber(input))
}

/// Waits until the test creates `go` in `dir`, then returns 7.
#[lambda_parallel]
fn waits_for_go(dir: PathBuf) -> u32 {
    assert!(wait_for(&dir, "go", LIMIT), "the test never said go");
    7
}

#[lambda_parallel]
fn marks_then_sleeps(dir: PathBuf, seconds: u64) -> u32 {
    mark(&dir, "started");
    std::thread::sleep(Duration::from_secs(seconds));
    std::process::id()
}

#[test]
fn map_returns_results_in_input_order() {
    let pool = Pool::builder().workers(3).chunk_size(1).build().unwrap();
    let squares = pool.map(square_late, 0..10).unwrap();
    assert_eq!(squares, (0..10).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn map_of_no_input_returns_no_result() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, Vec::new()).unwrap(), Vec::<u64>::new());
    assert!(pool.map_each(square, Vec::new()).is_empty());
}

#[test]
fn map_accepts_a_lambda_parallel_function_by_name() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, [3, 4]).unwrap(), [9, 16]);
}

#[test]
fn map_accepts_a_closure_that_captures_nothing() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(|x: u64| x + 1, [1, 2, 3]).unwrap(), [2, 3, 4]);
    assert_eq!(pool.map(|s: String| s.len(), ["ab".into()]).unwrap(), [2]);
}

#[test]
fn map_returns_a_workers_typed_err_as_a_value() {
    let pool = Pool::new(2).unwrap();
    let inputs = ["1", "x", "", "4"].map(String::from);
    let parsed = pool.map(parse, inputs).unwrap();
    assert_eq!(
        parsed,
        [
            Ok(1),
            Err(ParseError::NotANumber("x".into())),
            Err(ParseError::Empty),
            Ok(4)
        ]
    );
}

#[test]
fn map_each_returns_every_outcome_in_input_order() {
    let pool = Pool::builder().workers(2).chunk_size(2).build().unwrap();
    let outcomes = pool.map_each(even_only, 0..7);
    assert_eq!(outcomes.len(), 7);
    for (i, outcome) in (0..).zip(outcomes) {
        if i % 2 == 0 {
            assert_eq!(outcome.unwrap(), i);
        } else {
            let err = outcome.unwrap_err();
            assert_eq!(err.task_index(), Some(usize::try_from(i).unwrap()));
            assert_eq!(err.panic_message(), Some(&*format!("odd input {i}")));
            assert_eq!(err.worker(), "pool_api::even_only");
        }
    }
}

#[test]
fn starmap_calls_with_each_tuple_in_order() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(
        pool.starmap(add, [(1, 2), (3, 4), (5, 6)]).unwrap(),
        [3, 7, 11]
    );
    let each = pool.starmap_each(|a: u64, b: u64| a.checked_sub(b).unwrap(), [(5, 1), (1, 5)]);
    assert_eq!(*each[0].as_ref().unwrap(), 4);
    let err = each[1].as_ref().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.task_index(), Some(1));
}

#[test]
fn apply_returns_the_value_or_the_failure() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.apply(add, (20, 22)).unwrap(), 42);
    let err = pool.apply(even_only, (3,)).unwrap_err();
    assert_eq!(err.panic_message(), Some("odd input 3"));
    assert_eq!(pool.apply(|| 5_u8, ()).unwrap(), 5);
}

#[test]
fn apply_async_is_ready_only_once_its_task_is_done() {
    let dir = TempDir::new("apply-async");
    let pool = Pool::new(1).unwrap();
    let mut result = pool
        .apply_async(waits_for_go, (dir.path().to_owned(),))
        .unwrap();
    assert!(!result.ready(), "the task waits for the test");
    assert!(!result.wait(Duration::from_millis(20)));
    mark(dir.path(), "go");
    assert!(result.wait(LIMIT));
    assert!(result.ready());
    assert_eq!(result.get().unwrap(), 7);
}

#[test]
fn apply_async_get_returns_the_value() {
    let pool = Pool::new(2).unwrap();
    let a = pool.apply_async(add, (1, 2)).unwrap();
    let b = pool.apply_async(square, (5,)).unwrap();
    // Taken in the other order than submitted.
    assert_eq!(b.get().unwrap(), 25);
    assert_eq!(a.get().unwrap(), 3);
    let failed = pool.apply_async(even_only, (1,)).unwrap();
    assert!(failed.get().unwrap_err().is_panic());
}

#[test]
fn apply_async_get_timeout_returns_a_value_that_arrives_in_time() {
    let pool = Pool::new(1).unwrap();
    let result = pool.apply_async(square, (9,)).unwrap();
    assert_eq!(result.get_timeout(LIMIT).unwrap(), 81);
}

#[test]
fn apply_async_get_timeout_kills_the_worker_of_a_task_still_running() {
    let dir = TempDir::new("get-timeout");
    let pool = Pool::new(1).unwrap();
    let result = pool
        .apply_async(marks_then_sleeps, (dir.path().to_owned(), 600))
        .unwrap();
    let [worker] = pool.pids()[..] else {
        panic!("one worker")
    };
    let err = result.get_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        !children().contains(&worker),
        "the worker was killed and reaped"
    );
    // The pool goes on with a new worker.
    assert_eq!(pool.apply(square, (3,)).unwrap(), 9);
    assert_eq!(pool.pids().len(), 1);
}

#[test]
fn map_async_get_returns_results_in_input_order() {
    let pool = Pool::builder().workers(3).chunk_size(1).build().unwrap();
    let mut results = pool.map_async(square_late, 0..10).unwrap();
    assert!(results.wait(LIMIT));
    assert!(results.ready());
    assert_eq!(
        results.get().unwrap(),
        (0..10).map(|x| x * x).collect::<Vec<_>>()
    );
}

#[test]
fn map_async_get_each_returns_every_outcome() {
    let pool = Pool::new(2).unwrap();
    let outcomes = pool.map_async(even_only, 0..4).unwrap().get_each();
    assert_eq!(outcomes.len(), 4);
    assert_eq!(*outcomes[2].as_ref().unwrap(), 2);
    assert_eq!(outcomes[3].as_ref().unwrap_err().task_index(), Some(3));
}

#[test]
fn imap_yields_outcomes_in_input_order() {
    let pool = Pool::builder().workers(3).chunk_size(1).build().unwrap();
    let squares: Vec<u64> = pool.imap(square_late, 0..10).map(Result::unwrap).collect();
    assert_eq!(squares, (0..10).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn imap_reads_its_input_lazily() {
    let pool = Pool::new(2).unwrap();
    let pulled = Cell::new(0_u64);
    let inputs = (0_u64..).inspect(|&i| {
        pulled.set(i + 1);
        assert!(i < 10_000, "imap drained its endless input");
    });
    let first: Vec<u64> = pool
        .imap(square, inputs)
        .take(3)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, [0, 1, 4]);
    // A bounded window ahead of what was yielded: a few batches per worker, not the input.
    assert!(
        pulled.get() <= 3 + 32,
        "{} inputs pulled for 3 outcomes",
        pulled.get()
    );
}

#[test]
fn imap_unordered_yields_every_index_exactly_once() {
    let pool = Pool::builder().workers(3).chunk_size(2).build().unwrap();
    let mut seen: Vec<(usize, u64)> = pool
        .imap_unordered(square_late, 0..10)
        .map(|(index, outcome)| (index, outcome.unwrap()))
        .collect();
    seen.sort_unstable();
    let expected: Vec<(usize, u64)> = (0..10).map(|x| (x, (x * x) as u64)).collect();
    assert_eq!(seen, expected);
}

#[test]
fn imap_unordered_gives_each_failure_its_index() {
    let pool = Pool::new(2).unwrap();
    for (index, outcome) in pool.imap_unordered(even_only, 0..6) {
        match outcome {
            Ok(value) => assert_eq!(value, index as u64),
            Err(err) => {
                assert_eq!(index % 2, 1);
                assert_eq!(err.task_index(), Some(index));
            }
        }
    }
}

#[test]
fn errors_name_the_worker_function_and_the_task() {
    let pool = Pool::new(1).unwrap();
    let err = pool.map(even_only, [0, 2, 5]).unwrap_err();
    assert_eq!(err.task_index(), Some(2));
    assert_eq!(err.worker(), "pool_api::even_only");
    assert!(
        err.to_string()
            .starts_with("task 2 of worker `pool_api::even_only` panicked at "),
        "{err}"
    );
}

#[test]
fn apply_async_ready_polled_in_a_loop_sees_the_task_finish() {
    let pool = Pool::new(1).unwrap();
    let mut result = pool.apply_async(square, (6,)).unwrap();
    // `ready` never blocks, and must still move the work along: a caller may poll it alone.
    let give_up = Instant::now() + LIMIT;
    while !result.ready() {
        assert!(
            Instant::now() < give_up,
            "ready() never saw the task finish"
        );
    }
    assert_eq!(result.get().unwrap(), 36);
}

#[test]
fn map_each_runs_every_task_after_an_early_failure() {
    // Regression: `map_each` stopped feeding inputs after the first failure, as `map` does,
    // then waited for the rest for ever. Run it on a thread of its own, to fail rather than hang.
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
        let outcomes = pool.map_each(even_only, 0..100);
        let _ = send.send(outcomes.iter().map(Result::is_ok).collect::<Vec<_>>());
    });
    let ok = receive
        .recv_timeout(Duration::from_secs(60))
        .expect("map_each returned");
    assert_eq!(ok, (0..100).map(|i| i % 2 == 0).collect::<Vec<_>>());
}
