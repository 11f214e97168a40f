//! The failures a user matches on: `Error::kind()`, the predicates and accessors, timeouts and
//! deadlines, values that cannot cross, crashes, and results far larger than a pipe's buffer.

use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Error, Kind, Pool};
use serde::{Deserialize, Serialize, Serializer};

#[lambda_parallel]
fn misbehave(how: String) -> u32 {
    match how.as_str() {
        "panic" => panic!("bad input: {how}"),
        "panic_any" => std::panic::panic_any(42_u8),
        "abort" => std::process::abort(),
        // SAFETY: none; a deliberate segfault, as a C library might have.
        "segv" => unsafe {
            std::ptr::null_mut::<u32>().write_volatile(1);
            0
        },
        "exit" => std::process::exit(3),
        "hang" => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        _ => 1,
    }
}

fn failure(how: &str) -> Error {
    let pool = Pool::new(1).unwrap();
    pool.apply(misbehave, (how.to_owned(),)).unwrap_err()
}

#[test]
fn a_panic_says_what_and_where() {
    let err = failure("panic");
    assert_eq!(err.kind(), Kind::Panic);
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("bad input: panic"));
    let location = err.panic_location().expect("the location");
    assert_eq!(location.file(), file!());
    assert_eq!(location.line(), 12);
    assert_eq!(err.worker(), "errors::misbehave");
    let text = err.to_string();
    assert!(text.contains("bad input: panic"), "{text}");
    assert!(text.contains("misbehave"), "{text}");

    let err = failure("panic_any");
    assert_eq!(err.panic_message(), Some("<non-string panic payload>"));
}

#[test]
fn crashes_say_which_signal_or_exit_code() {
    let err = failure("abort");
    assert_eq!(err.kind(), Kind::Signal);
    assert_eq!(err.signal(), Some(6));
    assert_eq!(err.signal_name(), Some("SIGABRT"));
    assert!(!err.is_panic() && !err.is_timeout());

    let err = failure("segv");
    assert_eq!(err.signal_name(), Some("SIGSEGV"));
    assert_eq!(err.signal(), Some(11));

    let err = failure("exit");
    assert_eq!(err.kind(), Kind::Exit);
    assert_eq!(err.exit_code(), Some(3));
    assert_eq!(err.signal(), None);
}

#[test]
fn a_crash_costs_only_its_own_task() {
    let pool = Pool::new(2).unwrap();
    let hows = ["ok", "abort", "ok", "segv", "ok", "exit", "ok", "ok"].map(String::from);
    let outcomes = pool.map_each(misbehave, hows);
    let kinds: Vec<Option<Kind>> = outcomes
        .iter()
        .map(|o| o.as_ref().err().map(Error::kind))
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            Some(Kind::Signal),
            None,
            Some(Kind::Signal),
            None,
            Some(Kind::Exit),
            None,
            None
        ]
    );
    assert_eq!(outcomes[1].as_ref().unwrap_err().task_index(), Some(1));
    assert_eq!(pool.pids().len(), 2);
    assert_eq!(pool.map(misbehave, ["x".to_owned()]).unwrap(), [1]);
}

#[test]
fn a_task_timeout_kills_the_stuck_worker_only() {
    let pool = Pool::builder()
        .workers(2)
        .task_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let outcomes = pool.map_each(misbehave, ["hang", "ok", "ok", "hang"].map(String::from));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcomes[0].as_ref().unwrap_err().kind(), Kind::Timeout);
    assert!(outcomes[0].as_ref().unwrap_err().is_timeout());
    assert_eq!(outcomes[0].as_ref().unwrap_err().signal(), None);
    assert_eq!(*outcomes[1].as_ref().unwrap(), 1);
    assert_eq!(*outcomes[2].as_ref().unwrap(), 1);
    assert_eq!(outcomes[3].as_ref().unwrap_err().kind(), Kind::Timeout);
    assert_eq!(pool.pids().len(), 2);
}

#[test]
fn a_deadline_stops_everything_then_can_be_lifted() {
    let pool = Pool::new(1).unwrap();
    pool.set_deadline(Some(Instant::now() + Duration::from_millis(200)));
    let started = Instant::now();
    let outcomes = pool.map_each(misbehave, ["hang", "ok", "ok"].map(String::from));
    assert!(started.elapsed() < Duration::from_secs(10));
    for outcome in &outcomes {
        let err = outcome.as_ref().unwrap_err();
        assert_eq!(err.kind(), Kind::Deadline, "{err}");
        assert!(err.is_timeout());
    }
    pool.set_deadline(None);
    assert_eq!(pool.apply(misbehave, ("ok".to_owned(),)).unwrap(), 1);
}

/// A value whose `Serialize` fails, as a `PathBuf` that is not UTF-8 does.
#[derive(Debug, Deserialize)]
struct Unsendable(u8);

impl Serialize for Unsendable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be serialized",
        ))
    }
}

#[lambda_parallel]
fn takes_unsendable(value: Unsendable) -> u8 {
    value.0
}

#[lambda_parallel]
fn returns_unsendable(x: u8) -> Unsendable {
    Unsendable(x)
}

#[test]
fn an_argument_that_cannot_be_encoded_is_a_codec_error() {
    let pool = Pool::new(1).unwrap();
    let err = pool.apply(takes_unsendable, (Unsendable(1),)).unwrap_err();
    assert_eq!(err.kind(), Kind::Codec);
    assert!(err.is_codec());
    assert!(err.to_string().contains("refuses"), "{err}");

    let err = pool
        .map_async(takes_unsendable, [Unsendable(1)])
        .unwrap_err();
    assert!(err.is_codec(), "{err}");

    let outcomes = pool.map_each(|x: Unsendable| x.0, [Unsendable(1), Unsendable(2)]);
    assert!(outcomes.iter().all(|o| o.as_ref().unwrap_err().is_codec()));

    // Inline too: the mode for unit tests shows the same mistake.
    let inline = Pool::new(0).unwrap();
    assert!(inline
        .apply(takes_unsendable, (Unsendable(1),))
        .unwrap_err()
        .is_codec());
}

#[test]
fn a_result_that_cannot_be_encoded_is_a_codec_error() {
    let pool = Pool::new(1).unwrap();
    let err = pool.apply(returns_unsendable, (1,)).unwrap_err();
    assert!(err.is_codec(), "{err}");
    assert!(err.to_string().contains("refuses"), "{err}");
    let err = returns_unsendable::spawn(1).unwrap().join().unwrap_err();
    assert!(err.is_codec(), "{err}");
    // The worker survives its own codec error.
    assert_eq!(pool.apply(|x: u8| x, (5,)).unwrap(), 5);
}

#[lambda_parallel]
fn big_blob(mib: usize, seed: u8) -> Vec<u8> {
    (0..mib << 20)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn check_blob(blob: &[u8], mib: usize, seed: u8) {
    assert_eq!(blob.len(), mib << 20);
    assert!(blob
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i as u8).wrapping_mul(31).wrapping_add(seed)));
}

#[test]
fn huge_results_cross_whole() {
    let pool = Pool::new(2).unwrap();
    let blobs = pool.starmap(big_blob, [(48, 1), (1, 2), (64, 3)]).unwrap();
    check_blob(&blobs[0], 48, 1);
    check_blob(&blobs[1], 1, 2);
    check_blob(&blobs[2], 64, 3);
    let blob = big_blob::spawn(80, 4).unwrap().join().unwrap();
    check_blob(&blob, 80, 4);
}

#[test]
fn huge_arguments_cross_whole() {
    let pool = Pool::new(2).unwrap();
    let blob = big_blob(40, 9);
    let sums = pool
        .map(
            |blob: Vec<u8>| (blob.len(), blob.iter().map(|b| u64::from(*b)).sum::<u64>()),
            [blob.clone(), Vec::new(), blob.clone()],
        )
        .unwrap();
    let sum = blob.iter().map(|b| u64::from(*b)).sum::<u64>();
    assert_eq!(sums, [(blob.len(), sum), (0, 0), (blob.len(), sum)]);
}

#[test]
fn the_error_goes_into_a_lambda_handlers_error_and_io_error() {
    fn handler_error(err: Error) -> lambda_runtime::Error {
        err.into()
    }
    let err = handler_error(failure("abort"));
    assert!(err.to_string().contains("SIGABRT"), "{err}");
    let io: std::io::Error = failure("exit").into();
    assert!(io.to_string().contains('3'), "{io}");
    assert!(format!("{:?}", failure("panic")).contains("bad input"));
}

#[test]
fn init_off_the_main_thread_fails_and_says_why() {
    let err = std::thread::spawn(lambda_parallel::init)
        .join()
        .unwrap()
        .unwrap_err();
    assert!(err.is_spawn(), "{err}");
    assert_eq!(err.kind(), Kind::ServerGone);
    assert!(err.to_string().contains("main thread"), "{err}");
}
