//! `join` of a fork server's worker returns once the outcome has arrived, without waiting for
//! the server's exit record; the server still reaps every such worker. The server keeps a spare
//! worker forked ahead of need, which becomes the next worker. This program runs with
//! `SIGPIPE` at its default disposition (as a program whose `main` is not Rust's does), so that
//! a server that wrote an exit record nobody reads would die of it.
//!
//! `init` must run before any thread exists, so this test binary has its own `main` (no test
//! harness). It prints `served_join: N passed, N failed` and exits non-zero on a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::checks::{expect, run, watchdog, Check};
use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::Pid;

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[lambda_parallel]
fn exits(code: i32) -> u8 {
    std::process::exit(code)
}

/// Whether this worker's `SIGPIPE` does what the program's did: the default.
#[lambda_parallel]
fn sigpipe_is_default() -> bool {
    // SAFETY: `SIG_DFL` installs no handler code, so no handler can run unsafely.
    let previous = unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    matches!(previous, Ok(SigHandler::SigDfl))
}

/// Task 0 kills its worker; the others return their input.
fn first_one_dies(task: u32) -> u32 {
    if task == 0 {
        let _ = signal::raise(Signal::SIGKILL);
    }
    task
}

fn main() {
    // SAFETY: `SIG_DFL` installs no handler code; no other thread exists yet.
    unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }.expect("SIGPIPE reset");
    lambda_parallel::init().expect("init runs first thing in main");
    watchdog("served_join", Duration::from_secs(300));
    let checks: [Check; 10] = [
        (
            "the spare becomes the next worker",
            spare_becomes_the_worker,
        ),
        ("a killed spare is replaced", killed_spare_is_replaced),
        (
            "a request racing the spare's death still gets a worker",
            request_racing_a_dying_spare,
        ),
        (
            "writing to a dead pool worker raises no SIGPIPE",
            pool_worker_dies_with_batches_queued,
        ),
        ("joined workers are reaped by the server", joined_are_reaped),
        (
            "awaited workers are reaped by the server",
            awaited_are_reaped,
        ),
        (
            "a worker without an outcome reports its exit",
            exit_reported,
        ),
        ("workers keep the program's SIGPIPE", sigpipe_kept),
        (
            "a task larger than a pipe reaches its one-off worker",
            large_task_reaches_its_worker,
        ),
        (
            "arguments that cannot be encoded start no worker",
            unencodable_arguments_start_no_worker,
        ),
    ];
    run("served_join", &checks)
}

#[lambda_parallel]
fn checksum(bytes: Vec<u8>) -> (usize, u64) {
    (bytes.len(), bytes.iter().map(|b| u64::from(*b)).sum())
}

/// A one-off's task goes on its request pipe before the server starts it where the pipe holds
/// it all; one of 3 MiB does not (a pipe holds 1 MiB at most here), and the rest follows.
fn large_task_reaches_its_worker() -> Result<(), String> {
    for len in [0, 1, 64 << 10, 3 << 20] {
        let bytes: Vec<u8> = (0..len)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect();
        let expected = (len, bytes.iter().map(|b| u64::from(*b)).sum());
        let got = checksum::spawn(bytes)
            .map_err(|err| err.to_string())?
            .join()
            .map_err(|err| err.to_string())?;
        expect(got == expected, format!("{len} bytes: got {got:?}"))?;
    }
    Ok(())
}

/// Arguments whose `Serialize` fails.
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refused on purpose"))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("never sent"))
    }
}

#[lambda_parallel]
fn takes_unencodable(_: Unencodable) -> u8 {
    0
}

fn unencodable_arguments_start_no_worker() -> Result<(), String> {
    let before = spares()?;
    let Err(err) = takes_unencodable::spawn(Unencodable) else {
        return Err("spawned".into());
    };
    expect(
        err.to_string().contains("refused on purpose"),
        format!("the error: {err}"),
    )?;
    // A worker started would have been the spare, and the server would have forked another.
    let after = spares()?;
    expect(
        !before.is_empty() && after == before,
        format!("the server's spare was {before:?}, then {after:?}"),
    )
}

/// The fork server's spare worker (`lp-spare`), as a list of pids: one, unless it is being
/// replaced.
fn spares() -> Result<Vec<u32>, String> {
    let children = |pid: u32| -> Result<Vec<u32>, String> {
        let path = format!("/proc/{pid}/task/{pid}/children");
        let text = std::fs::read_to_string(&path).map_err(|err| format!("{path}: {err}"))?;
        Ok(text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    };
    let comm = |pid: &u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    // A spare just forked takes its name a moment later: wait for one to have it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut spares = Vec::new();
        for child in children(std::process::id())? {
            spares.extend(
                children(child)?
                    .into_iter()
                    .filter(|pid| comm(pid).starts_with("lp-spare")),
            );
        }
        if !spares.is_empty() || Instant::now() >= deadline {
            return Ok(spares);
        }
        std::thread::yield_now();
    }
}

/// Waits until none of `pids` exists any more, not even as a zombie; a bound turns a worker that
/// is never reaped into a failure rather than a hang.
fn all_reaped(pids: &[u32]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for pid in pids {
        while Path::new(&format!("/proc/{pid}")).exists() {
            expect(
                Instant::now() < deadline,
                format!("worker {pid} was never reaped"),
            )?;
            std::thread::yield_now();
        }
    }
    Ok(())
}

/// The fork server's spare: its one child, once every worker it forked has been reaped.
fn find_spare() -> Result<u32, String> {
    let children = lambda_parallel_tests::children();
    let [server] = children[..] else {
        return Err(format!("the server is not our only child: {children:?}"));
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let theirs = lambda_parallel_tests::children_of(server);
        if let [spare] = theirs[..] {
            return Ok(spare);
        }
        expect(
            Instant::now() < deadline,
            format!("the server's children are {theirs:?}, not one spare"),
        )?;
        std::thread::yield_now();
    }
}

/// The name a process goes by in `ps` (`/proc/<pid>/comm`), without the newline.
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

fn spare_becomes_the_worker() -> Result<(), String> {
    let spare = find_spare()?;
    // Named apart while it waits (it renames itself just after the fork).
    let deadline = Instant::now() + Duration::from_secs(30);
    while comm(spare) != "lp-spare" {
        expect(
            Instant::now() < deadline,
            format!("the spare is called {:?}", comm(spare)),
        )?;
        std::thread::yield_now();
    }
    let handle = square::spawn(5).map_err(|err| err.to_string())?;
    expect(
        handle.pid() == spare,
        "the request was not handed to the spare",
    )?;
    let value = handle.join().map_err(|err| err.to_string())?;
    expect(value == 25, format!("square(5) = {value}"))?;
    // `join` returned without waiting for the reaping: until the server has reaped the worker,
    // it could pass for the server's one child, the spare.
    all_reaped(&[spare])?;
    let next = find_spare()?;
    expect(next != spare, "no new spare")
}

fn killed_spare_is_replaced() -> Result<(), String> {
    let spare = find_spare()?;
    let pid = Pid::from_raw(i32::try_from(spare).map_err(|err| err.to_string())?);
    signal::kill(pid, Signal::SIGKILL).map_err(|err| err.to_string())?;
    // The server reaps the dead spare, rather than leave a zombie. (A request that came before
    // it died would be handed to it, and fail as a killed worker, as one killed after its fork
    // would.)
    all_reaped(&[spare])?;
    let handle = square::spawn(6).map_err(|err| err.to_string())?;
    let worker = handle.pid();
    let value = handle.join().map_err(|err| err.to_string())?;
    expect(value == 36, format!("square(6) = {value}"))?;
    expect(worker != spare, "the dead spare was handed a request")?;
    // A new spare takes the dead one's place.
    all_reaped(&[worker])?;
    let next = find_spare()?;
    expect(next != spare, "no new spare")
}

fn request_racing_a_dying_spare() -> Result<(), String> {
    let spare = find_spare()?;
    let pid = Pid::from_raw(i32::try_from(spare).map_err(|err| err.to_string())?);
    signal::kill(pid, Signal::SIGKILL).map_err(|err| err.to_string())?;
    // At once, before the server can have noticed: handing the request to the dead spare fails
    // and the server forks afresh, or the spare was replaced already; either way the spawn
    // succeeds. Should the spare die just after taking the request, the join says SIGKILL (and
    // the pidfd comes from the server, so the spawn does not fail for a pid already reaped).
    let handle = square::spawn(7).map_err(|err| format!("spawn failed: {err}"))?;
    match handle.join() {
        Ok(value) => expect(value == 49, format!("square(7) = {value}")),
        Err(err) => expect(
            err.signal_name() == Some("SIGKILL"),
            format!("the dead spare's task failed otherwise: {err}"),
        ),
    }
}

fn pool_worker_dies_with_batches_queued() -> Result<(), String> {
    // One worker, one task a batch: when task 0 kills the worker, the next batch may be on its
    // way to the dead worker's pipe, in a program whose SIGPIPE is the default. Only task 0
    // fails, and the program lives. (Whether that write lands after the death is a race; the
    // deterministic check that such a write raises nothing is a unit test in process.rs.)
    let pool = Pool::builder()
        .workers(1)
        .chunk_size(1)
        .build()
        .map_err(|err| err.to_string())?;
    let outcomes = pool.map_each(first_one_dies, 0..20);
    let killed = outcomes[0]
        .as_ref()
        .err()
        .and_then(lambda_parallel::Error::signal_name);
    expect(
        killed == Some("SIGKILL"),
        format!("task 0: {:?}", outcomes[0]),
    )?;
    let rest: Vec<u32> = outcomes[1..]
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    expect(
        rest == (1..20).collect::<Vec<u32>>(),
        format!("the others: {rest:?}"),
    )
}

fn joined_are_reaped() -> Result<(), String> {
    let fds = lambda_parallel_tests::open_fds();
    let mut pids = Vec::new();
    for x in 0..20 {
        let handle = square::spawn(x).map_err(|err| err.to_string())?;
        pids.push(handle.pid());
        let value = handle.join().map_err(|err| err.to_string())?;
        expect(value == x * x, format!("square({x}) = {value}"))?;
    }
    expect(
        lambda_parallel_tests::open_fds() == fds,
        "descriptors leaked",
    )?;
    all_reaped(&pids)?;
    // The server wrote 20 exit records that nobody read, and lives on.
    let value = square::spawn(7).map_err(|err| err.to_string())?.join();
    expect(
        matches!(value, Ok(49)),
        format!("after the joins: {value:?}"),
    )
}

fn awaited_are_reaped() -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let pids = runtime.block_on(async {
        let mut pids = Vec::new();
        for x in 0..5 {
            let handle = square::spawn(x).map_err(|err| err.to_string())?;
            pids.push(handle.pid());
            let value = handle.await.map_err(|err| err.to_string())?;
            expect(value == x * x, format!("square({x}) = {value}"))?;
        }
        Ok::<_, String>(pids)
    })?;
    all_reaped(&pids)
}

fn exit_reported() -> Result<(), String> {
    let err = exits::spawn(4)
        .map_err(|err| err.to_string())?
        .join()
        .expect_err("no outcome");
    expect(err.exit_code() == Some(4), err.to_string())
}

fn sigpipe_kept() -> Result<(), String> {
    let one_off = sigpipe_is_default::spawn()
        .map_err(|err| err.to_string())?
        .join()
        .map_err(|err| err.to_string())?;
    expect(one_off, "a one-off worker ignores SIGPIPE")?;
    let pool = Pool::new(1).map_err(|err| err.to_string())?;
    let pooled = pool
        .apply(sigpipe_is_default, ())
        .map_err(|err| err.to_string())?;
    expect(pooled, "a pool worker ignores SIGPIPE")
}
