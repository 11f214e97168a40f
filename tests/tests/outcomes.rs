//! Every way a worker can fail reaches the caller as a distinct, descriptive error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lambda_parallel::lambda_parallel;
use lambda_parallel_tests::{Flattened, Untagged};
use nix::sys::signal::{self, SigHandler, Signal};

#[lambda_parallel]
fn panics(message: String) -> u32 {
    panic!("{message}")
}

#[test]
fn join_returns_worker_panic_message_and_location() {
    let line = line!() - 5;
    let err = panics::spawn("disk full".into())
        .unwrap()
        .join()
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("disk full"));
    let location = err
        .panic_location()
        .expect("the panic hook saw the location");
    assert_eq!(location.file(), file!());
    assert_eq!(location.line(), line);
    assert_eq!(location.column(), 5);
    assert_eq!(
        err.to_string(),
        format!(
            "worker `outcomes::panics` panicked at {}:{line}:5: disk full",
            file!()
        )
    );
    assert_eq!(err.worker(), "outcomes::panics");
    assert_eq!((err.signal(), err.exit_code()), (None, None));
}

#[lambda_parallel]
fn panics_with_a_number() -> u32 {
    std::panic::panic_any(42_i32)
}

#[test]
fn non_string_panic_payload_is_reported_as_such() {
    let err = panics_with_a_number::spawn().unwrap().join().unwrap_err();
    assert_eq!(err.panic_message(), Some("<non-string panic payload>"));
}

#[lambda_parallel]
fn recovers_from_its_own_panic() -> String {
    let caught = std::panic::catch_unwind(|| panic!("handled inside"));
    assert!(caught.is_err());
    "recovered".to_owned()
}

#[test]
fn panic_caught_inside_the_worker_is_not_an_error() {
    let value = recovers_from_its_own_panic::spawn().unwrap().join();
    assert_eq!(value.unwrap(), "recovered");
}

#[lambda_parallel]
fn raises(signal: i32) -> u32 {
    let signal = Signal::try_from(signal).unwrap();
    // The Rust runtime handles SIGSEGV and SIGBUS to report stack overflows, and its handler
    // lets a raised (rather than faulting) signal through; restore the default action first.
    // SAFETY: `SIG_DFL` installs no handler code, so no handler can run unsafely.
    unsafe { signal::signal(signal, SigHandler::SigDfl) }.unwrap();
    signal::raise(signal).unwrap();
    0
}

#[test]
fn join_reports_the_signal_that_killed_the_worker() {
    for signal in [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGTERM] {
        let err = raises::spawn(signal as i32).unwrap().join().unwrap_err();
        assert_eq!(err.signal(), Some(signal as i32));
        assert_eq!(err.signal_name(), Some(signal.as_str()));
        assert!(!err.is_panic() && !err.is_timeout());
        assert_eq!(
            err.to_string(),
            format!(
                "worker `outcomes::raises` was killed by signal {} ({})",
                signal as i32,
                signal.as_str()
            )
        );
    }
}

#[lambda_parallel]
fn aborts() -> u32 {
    std::process::abort()
}

#[test]
fn abort_is_reported_as_sigabrt() {
    let err = aborts::spawn().unwrap().join().unwrap_err();
    assert_eq!(err.signal_name(), Some("SIGABRT"));
}

#[lambda_parallel]
fn exits(code: i32) -> u32 {
    std::process::exit(code)
}

#[test]
fn join_reports_exit_code_without_a_result() {
    for code in [0, 3, 101] {
        let err = exits::spawn(code).unwrap().join().unwrap_err();
        assert_eq!(err.exit_code(), Some(code));
        assert_eq!(
            err.to_string(),
            format!("worker `outcomes::exits` exited with code {code} without a result")
        );
    }
}

#[lambda_parallel]
fn sleeps(seconds: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(seconds));
    seconds
}

/// Whether `pid` is still a child of this process (running, or a zombie not yet reaped).
fn is_child(pid: u32) -> bool {
    lambda_parallel_tests::children().contains(&pid)
}

#[test]
fn join_timeout_kills_and_reaps_a_stuck_worker() {
    let handle = sleeps::spawn(600).unwrap();
    let pid = handle.pid();
    let started = Instant::now();
    let err = handle.join_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(err.is_timeout());
    assert_eq!(err.signal(), None);
    assert_eq!(
        err.to_string(),
        "worker `outcomes::sleeps` timed out after 100ms and was killed"
    );
    assert!(!is_child(pid), "the timed-out worker was reaped");
}

#[test]
fn join_timeout_returns_the_value_of_a_worker_that_finishes_in_time() {
    let value = sleeps::spawn(0)
        .unwrap()
        .join_timeout(Duration::from_secs(60));
    assert_eq!(value.unwrap(), 0);
}

#[test]
fn kill_then_join_reports_sigkill() {
    let mut handle = sleeps::spawn(600).unwrap();
    handle.kill().unwrap();
    let err = handle.join().unwrap_err();
    assert_eq!(err.signal_name(), Some("SIGKILL"));
}

#[test]
fn dropping_a_handle_kills_and_reaps_its_worker() {
    let handle = sleeps::spawn(600).unwrap();
    let pid = handle.pid();
    assert!(is_child(pid));
    drop(handle);
    assert!(!is_child(pid));
}

#[lambda_parallel]
fn returns_flattened() -> Flattened {
    Flattened {
        id: 1,
        extra: BTreeMap::from([("a".into(), 2)]),
    }
}

#[test]
fn result_that_cannot_be_encoded_is_a_codec_error() {
    let err = returns_flattened::spawn().unwrap().join().unwrap_err();
    assert!(err.is_codec(), "{err}");
    assert!(
        err.to_string()
            .starts_with("worker `outcomes::returns_flattened` could not encode its result: "),
        "{err}"
    );
}

#[lambda_parallel]
fn returns_untagged() -> Untagged {
    Untagged::Number(3)
}

#[test]
fn result_that_cannot_be_decoded_is_a_codec_error() {
    let err = returns_untagged::spawn().unwrap().join().unwrap_err();
    assert!(err.is_codec(), "{err}");
    assert!(
        err.to_string()
            .starts_with("failed to decode the result of worker `outcomes::returns_untagged`: "),
        "{err}"
    );
}

#[test]
fn errors_convert_into_io_errors() {
    let err = sleeps::spawn(600)
        .unwrap()
        .join_timeout(Duration::ZERO)
        .unwrap_err();
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
}
