//! Under a seccomp filter that refuses `pidfd_send_signal` (but not `pidfd_open`), kills still
//! happen, through `kill(2)` on a pid not yet reaped, or through the fork server: a timeout
//! returns on time, a drop does not wait for the worker to end by itself, and a pool task past
//! its timeout does not hang the pool (issue #11, case 6).
//!
//! The filter and `init` hold for the process's life, so each mode (forking straight from the
//! caller, or from the fork server) runs in a process of its own.

use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::checks::{expect, in_modes, mode, run, watchdog, Check};
use lambda_parallel_tests::{ended_within, seccomp};

/// Far longer than any bound below: a worker that ends by itself fails the check.
const NAP: Duration = Duration::from_secs(5);

/// What a kill may take, with the kernel's teardown and a busy CI machine.
const PROMPT: Duration = Duration::from_millis(1500);

#[lambda_parallel]
fn nap() -> u32 {
    std::thread::sleep(NAP);
    std::process::id()
}

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

fn join_timeout_returns_on_time() -> Result<(), String> {
    let handle = nap::spawn().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let outcome = handle.join_timeout(Duration::from_millis(300));
    let took = started.elapsed();
    expect(
        outcome
            .as_ref()
            .is_err_and(lambda_parallel::Error::is_timeout),
        format!("{outcome:?}"),
    )?;
    expect(took < PROMPT, format!("join_timeout(300ms) took {took:?}"))
}

fn kill_then_join_reports_sigkill() -> Result<(), String> {
    let mut handle = nap::spawn().map_err(|e| e.to_string())?;
    handle.kill().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let outcome = handle.join();
    let took = started.elapsed();
    expect(
        outcome
            .as_ref()
            .err()
            .and_then(lambda_parallel::Error::signal_name)
            == Some("SIGKILL"),
        format!("{outcome:?}"),
    )?;
    expect(took < PROMPT, format!("join after kill took {took:?}"))
}

fn drop_ends_the_worker_at_once() -> Result<(), String> {
    let handle = nap::spawn().map_err(|e| e.to_string())?;
    let pid = handle.pid();
    let started = Instant::now();
    drop(handle);
    let took = started.elapsed();
    expect(took < PROMPT, format!("drop took {took:?}"))?;
    expect(
        ended_within(pid, PROMPT),
        format!("worker {pid} still runs"),
    )
}

fn pool_task_past_its_timeout_fails_and_the_pool_goes_on() -> Result<(), String> {
    let pool = Pool::builder()
        .workers(1)
        .task_timeout(Duration::from_millis(300))
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let outcome = pool.apply(nap, ());
    let took = started.elapsed();
    expect(
        outcome
            .as_ref()
            .is_err_and(lambda_parallel::Error::is_timeout),
        format!("{outcome:?}"),
    )?;
    expect(took < PROMPT, format!("the timed-out task took {took:?}"))?;
    let started = Instant::now();
    let squares = pool.map(square, 0..4).map_err(|e| e.to_string())?;
    expect(squares == [0, 1, 4, 9], format!("{squares:?}"))?;
    expect(started.elapsed() < PROMPT, "the next call waited")?;
    let pid = pool.pids()[0];
    let started = Instant::now();
    drop(pool);
    expect(started.elapsed() < PROMPT, "dropping the pool waited")?;
    expect(
        ended_within(pid, PROMPT),
        format!("pool worker {pid} still runs"),
    )
}

fn main() {
    let Some(mode) = mode() else {
        in_modes("kill_refused", &["direct", "served"]);
    };
    seccomp::refuse(libc::SYS_pidfd_send_signal, libc::EPERM);
    if mode == "served" {
        lambda_parallel::init().expect("init runs first thing in main");
    }
    watchdog("kill_refused", Duration::from_secs(60));
    let checks: [Check; 4] = [
        ("join_timeout returns on time", join_timeout_returns_on_time),
        (
            "kill then join reports SIGKILL",
            kill_then_join_reports_sigkill,
        ),
        ("drop ends the worker at once", drop_ends_the_worker_at_once),
        (
            "a pool task past its timeout fails, and the pool goes on",
            pool_task_past_its_timeout_fails_and_the_pool_goes_on,
        ),
    ];
    run(&format!("kill_refused ({mode})"), &checks);
}
