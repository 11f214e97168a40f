//! A worker's panic never unwinds into the caller's code inside the worker process.

use std::io::Read;
use std::os::fd::OwnedFd;

use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn fails() -> u32 {
    panic!("worker failure")
}

#[test]
fn panicking_worker_under_the_callers_catch_unwind_runs_the_caller_once() {
    // Every process that runs the code after `catch_unwind` writes one byte to this pipe. Were
    // the worker's panic to unwind out of the worker into the caller's frames (which the forked
    // child also has), the child would write a second byte.
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    let joined = std::panic::catch_unwind(|| {
        let err = fails::spawn().unwrap().join().unwrap_err();
        assert_eq!(err.panic_message(), Some("worker failure"));
        err.panic_message().map(str::to_owned)
    });
    nix::unistd::write(&write, b"x").unwrap();
    drop(write);
    assert_eq!(joined.unwrap().as_deref(), Some("worker failure"));
    let mut written = Vec::new();
    std::fs::File::from(read).read_to_end(&mut written).unwrap();
    assert_eq!(written, b"x");
}
