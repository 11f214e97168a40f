//! On a kernel without `pidfd_open` (before Linux 5.3), or under a filter that refuses it, the
//! runtime says so, naming the call and the kernel it needs: `init` fails, and so does every
//! spawn (issue #11, case 10).

use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::checks::{expect, report, watchdog};
use lambda_parallel_tests::seccomp;

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

/// The error and its sources, as `anyhow` would print them: the error's own `Display` does
/// not repeat its source's.
fn names_the_call_and_the_kernel(err: &lambda_parallel::Error) -> Result<(), String> {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    expect(
        text.contains("`pidfd_open`") && text.contains("Linux 5.3 or later"),
        text,
    )
}

fn init_fails_clearly() -> Result<(), String> {
    let Err(err) = lambda_parallel::init() else {
        return Err("init succeeded without pidfd_open".into());
    };
    names_the_call_and_the_kernel(&err)
}

fn spawn_fails_clearly() -> Result<(), String> {
    let Err(err) = square::spawn(3) else {
        return Err("spawn succeeded without pidfd_open".into());
    };
    expect(err.is_spawn(), format!("{err:?}"))?;
    names_the_call_and_the_kernel(&err)
}

fn pool_fails_clearly() -> Result<(), String> {
    let Err(err) = Pool::new(2) else {
        return Err("the pool started without pidfd_open".into());
    };
    names_the_call_and_the_kernel(&err)
}

fn main() {
    seccomp::refuse(libc::SYS_pidfd_open, libc::ENOSYS);
    // Before the watchdog's thread: `init` must see a single thread to get as far as the check.
    let init = init_fails_clearly();
    watchdog("pidfd_refused", Duration::from_secs(60));
    report(
        "pidfd_refused",
        [
            ("init fails, naming pidfd_open and Linux 5.3", init),
            (
                "spawn fails, naming pidfd_open and Linux 5.3",
                spawn_fails_clearly(),
            ),
            (
                "a pool fails, naming pidfd_open and Linux 5.3",
                pool_fails_clearly(),
            ),
        ],
    );
}
