//! A worker hands back exactly what its function returned.

use lambda_parallel::lambda_parallel;
use serde::{Deserialize, Serialize};

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn join_returns_the_value() {
    assert_eq!(square::spawn(12).unwrap().join().unwrap(), 144);
}

#[test]
fn plain_call_is_unchanged() {
    assert_eq!(square(12), 144);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum ParseError {
    Empty,
    NotANumber { input: String },
}

#[lambda_parallel]
fn parse(input: String) -> Result<u32, ParseError> {
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    input.parse().map_err(|_| ParseError::NotANumber { input })
}

#[test]
fn join_returns_the_workers_own_err_typed() {
    let joined = parse::spawn("x1".into()).unwrap().join();
    assert_eq!(
        joined.unwrap(),
        Err(ParseError::NotANumber { input: "x1".into() })
    );
    assert_eq!(
        parse::spawn(String::new()).unwrap().join().unwrap(),
        Err(ParseError::Empty)
    );
    assert_eq!(parse::spawn("42".into()).unwrap().join().unwrap(), Ok(42));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    items: Vec<(String, u32)>,
    note: Option<String>,
}

#[lambda_parallel]
fn summarize(order: Order, (discount, tax): (u32, u32), label: String) -> (u64, u32, String) {
    let total: u32 = order.items.iter().map(|(_, cents)| cents).sum();
    (
        order.id,
        total - discount + tax,
        format!("{label}:{:?}", order.note),
    )
}

#[test]
fn arguments_of_several_types_arrive_intact() {
    let order = Order {
        id: 7,
        items: vec![("tea".into(), 300), ("cake".into(), 450)],
        note: Some("no sugar".into()),
    };
    let expected = summarize(order.clone(), (50, 20), "eu".into());
    let joined = summarize::spawn(order, (50, 20), "eu".into())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(joined, expected);
    assert_eq!(joined, (7, 720, "eu:Some(\"no sugar\")".into()));
}

#[lambda_parallel]
fn nothing() {}

#[test]
fn worker_with_no_arguments_and_no_return_value() {
    nothing::spawn().unwrap().join().unwrap();
}

#[lambda_parallel]
fn pid() -> u32 {
    std::process::id()
}

#[test]
fn worker_runs_in_another_process() {
    let handle = pid::spawn().unwrap();
    let child = handle.pid();
    assert_ne!(child, std::process::id());
    assert_eq!(handle.join().unwrap(), child);
}

#[test]
fn is_finished_once_the_worker_has_ended() {
    let handle = square::spawn(3).unwrap();
    // `is_finished` must turn true by itself, without a join; bound the wait so that a bug fails
    // the test instead of hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !handle.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "worker never finished"
        );
        std::thread::yield_now();
    }
    assert_eq!(handle.join().unwrap(), 9);
}
