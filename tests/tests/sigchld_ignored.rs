//! A host that sets `SIGCHLD` to `SIG_IGN` (which makes the kernel reap children by itself and
//! discard their exit statuses) corrupts no outcome: a result arrives, an abort is an abort, an
//! exit code is that code (issue #11, case 7). With the fork server and without it, each in a
//! process of its own.

use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::checks::{expect, in_modes, mode, run, watchdog, Check};

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[lambda_parallel]
fn abort() {
    std::process::abort();
}

#[lambda_parallel]
fn exit(code: i32) {
    std::process::exit(code);
}

fn join_returns_the_result() -> Result<(), String> {
    let value = square::spawn(7)
        .and_then(lambda_parallel::JoinHandle::join)
        .map_err(|e| e.to_string())?;
    expect(value == 49, format!("{value}"))
}

fn an_abort_is_sigabrt() -> Result<(), String> {
    let outcome = abort::spawn().and_then(lambda_parallel::JoinHandle::join);
    let name = outcome
        .as_ref()
        .err()
        .and_then(lambda_parallel::Error::signal_name);
    expect(name == Some("SIGABRT"), format!("{outcome:?}"))
}

fn an_exit_is_its_code() -> Result<(), String> {
    let outcome = exit::spawn(5).and_then(lambda_parallel::JoinHandle::join);
    let code = outcome
        .as_ref()
        .err()
        .and_then(lambda_parallel::Error::exit_code);
    expect(code == Some(5), format!("{outcome:?}"))
}

fn a_pool_reports_each_outcome() -> Result<(), String> {
    let pool = Pool::new(2).map_err(|e| e.to_string())?;
    let squares = pool.map(square, 0..4).map_err(|e| e.to_string())?;
    expect(squares == [0, 1, 4, 9], format!("{squares:?}"))?;
    let aborted = pool.apply(abort, ());
    let name = aborted
        .as_ref()
        .err()
        .and_then(lambda_parallel::Error::signal_name);
    expect(name == Some("SIGABRT"), format!("{aborted:?}"))?;
    let exited = pool.apply(exit, (5,));
    let code = exited
        .as_ref()
        .err()
        .and_then(lambda_parallel::Error::exit_code);
    expect(code == Some(5), format!("{exited:?}"))?;
    let squares = pool.map(square, 0..4).map_err(|e| e.to_string())?;
    expect(squares == [0, 1, 4, 9], format!("{squares:?}"))
}

fn main() {
    let Some(mode) = mode() else {
        in_modes("sigchld_ignored", &["direct", "served"]);
    };
    // As a host may have done before our code runs.
    // SAFETY: ignoring a signal installs no handler.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::SIGCHLD,
            nix::sys::signal::SigHandler::SigIgn,
        )
    }
    .expect("SIGCHLD can be ignored");
    if mode == "served" {
        lambda_parallel::init().expect("init runs first thing in main");
    }
    watchdog("sigchld_ignored", Duration::from_secs(60));
    let checks: [Check; 4] = [
        ("join returns the result", join_returns_the_result),
        ("an abort is reported as SIGABRT", an_abort_is_sigabrt),
        ("an exit is reported with its code", an_exit_is_its_code),
        ("a pool reports each outcome", a_pool_reports_each_outcome),
    ];
    run(&format!("sigchld_ignored ({mode})"), &checks);
}
