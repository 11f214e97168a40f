//! Running out of file descriptors is an error from `spawn`, never a panic.
//!
//! One test in this binary: it lowers the process's own descriptor limit.

use lambda_parallel::lambda_parallel;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

#[lambda_parallel]
fn one() -> u8 {
    1
}

#[test]
fn spawn_reports_emfile_as_a_spawn_error() {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let open = lambda_parallel_tests::open_fds();
    // Descriptors already open stay open; no new one can be made, so the pipe cannot be.
    setrlimit(Resource::RLIMIT_NOFILE, 0, hard).unwrap();
    let result = one::spawn();
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();

    let err = result.unwrap_err();
    assert!(err.is_spawn(), "{err}");
    assert_eq!(
        err.io_error().and_then(std::io::Error::raw_os_error),
        Some(nix::errno::Errno::EMFILE as i32)
    );
    assert_eq!(err.kind(), lambda_parallel::Kind::Spawn);
    // The operating system's error is the source, and is not said twice: a reporter that
    // prints the chain (anyhow) prints "failed to spawn …: Too many open files (os error 24)".
    assert_eq!(
        err.to_string(),
        "failed to spawn worker `spawn_failure::one`"
    );
    let source = std::error::Error::source(&err).expect("the io error is the source");
    assert!(!err.to_string().contains(&source.to_string()));
    assert_eq!(lambda_parallel_tests::open_fds(), open, "nothing leaked");
    assert_eq!(one::spawn().unwrap().join().unwrap(), 1);
}
