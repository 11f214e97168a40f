//! Every worker ends when its caller ends, busy or idle, whatever thread built its pool or
//! spawned it, and however the caller ends: `exit`, `SIGTERM`, `SIGKILL` (issue #11, case 9).
//! Without the fork server, a worker forked off the main thread cannot ask the kernel to kill it
//! with its caller (`PR_SET_PDEATHSIG` follows the forking thread), so this is the case tested.
//!
//! Each caller is this binary, run again in a mode that starts a worker, writes its pid down and
//! ends; the test then watches the worker's end from outside.

use std::path::Path;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::checks::{expect, mode, run, watchdog, Check, MODE};
use lambda_parallel_tests::{ended_within, mark, TempDir};

/// Longer than any test run: a worker that finishes this did outlive its caller.
const FOREVER: Duration = Duration::from_secs(600);

/// What the worker's end may take once its caller has gone.
const PROMPT: Duration = Duration::from_secs(5);

/// Marks `dir` with this worker's pid, then runs for ever.
#[lambda_parallel]
fn stuck(dir: String) {
    mark(Path::new(&dir), &format!("pid-{}", std::process::id()));
    std::thread::sleep(FOREVER);
}

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[lambda_parallel]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// The caller's life, in the mode `how`: `pool` or `spawn` (what starts the worker), `-busy` or
/// `-idle`, then how it ends. Never returns.
fn caller(how: &str, dir: &Path) -> ! {
    let parts: Vec<&str> = how.split('-').collect();
    let [kind, state, end] = parts[..] else {
        panic!("bad mode {how}");
    };
    let (pooled, busy) = (kind == "pool", state == "busy");
    let dir_name = dir.to_str().unwrap().to_owned();
    // Built on a thread that lives on, busy elsewhere, as a tokio worker thread would.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _pool;
        let _handle;
        if pooled {
            let pool = Pool::new(1).unwrap();
            if busy {
                // This thread drives the pool, in a call that the caller's end interrupts.
                tx.send(()).unwrap();
                let _ = pool.apply(stuck, (dir_name,));
                unreachable!("the stuck task returned");
            } else {
                assert_eq!(pool.apply(square, (3,)).unwrap(), 9);
                mark(Path::new(&dir_name), &format!("pid-{}", pool.pids()[0]));
            }
            _pool = pool;
        } else {
            _handle = stuck::spawn(dir_name).unwrap();
        }
        tx.send(()).unwrap();
        std::thread::sleep(FOREVER);
    });
    rx.recv().unwrap();
    assert!(wait_for_pid(dir).is_some(), "the worker never started");
    match end {
        "exit" => std::process::exit(0),
        "term" => nix::sys::signal::raise(nix::sys::signal::SIGTERM).unwrap(),
        _ => nix::sys::signal::raise(nix::sys::signal::SIGKILL).unwrap(),
    }
    unreachable!("the caller has ended");
}

fn wait_for_pid(dir: &Path) -> Option<u32> {
    let give_up = std::time::Instant::now() + PROMPT;
    loop {
        let pid = std::fs::read_dir(dir).ok()?.find_map(|entry| {
            entry
                .ok()?
                .file_name()
                .to_str()?
                .strip_prefix("pid-")?
                .parse()
                .ok()
        });
        if pid.is_some() || std::time::Instant::now() >= give_up {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs a caller in mode `how` and checks that its worker ends with it.
fn worker_ends_with_its_caller(how: &str) -> Result<(), String> {
    let dir = TempDir::new("caller-death");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env(MODE, format!("{how}:{}", dir.path().display()))
        .status()
        .map_err(|e| e.to_string())?;
    expect(
        !status.success() || how.ends_with("exit"),
        format!("caller {status}"),
    )?;
    let pid = wait_for_pid(dir.path()).ok_or("no worker pid written")?;
    expect(
        ended_within(pid, PROMPT),
        format!("worker {pid} outlived its caller ({how})"),
    )
}

fn main() {
    if let Some(mode) = mode() {
        let (how, dir) = mode.split_once(':').expect("MODE is how:dir");
        caller(how, Path::new(dir));
    }
    watchdog("caller_death", Duration::from_secs(120));
    macro_rules! case {
        ($how:literal) => {
            (concat!("worker ends with its caller: ", $how), || {
                worker_ends_with_its_caller($how)
            })
        };
    }
    let checks: [Check; 8] = [
        case!("pool-busy-exit"),
        case!("pool-busy-term"),
        case!("pool-busy-kill"),
        case!("pool-idle-exit"),
        case!("pool-idle-kill"),
        case!("spawn-busy-exit"),
        case!("spawn-busy-kill"),
        (
            "a one-off spawned on a thread that has ended still runs",
            one_off_outlives_the_thread_that_spawned_it,
        ),
    ];
    run("caller_death", &checks);
}

fn one_off_outlives_the_thread_that_spawned_it() -> Result<(), String> {
    // The thread has ended before the worker's nap is over.
    let handle = std::thread::spawn(|| nap::spawn(300))
        .join()
        .map_err(|_| "the spawning thread panicked")?
        .map_err(|e| e.to_string())?;
    let value = handle.join().map_err(|e| e.to_string())?;
    expect(value == 300, format!("{value}"))
}
