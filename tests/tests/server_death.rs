//! When the fork server dies (the OOM killer, a stray `kill -9`), every call on a pool built
//! before fails at once with an error that says so; none waits on the dead server.
//!
//! `init` must run before any thread exists, so this test binary has its own `main`.

use std::time::Duration;

use lambda_parallel::{lambda_parallel, Kind, Pool};
use lambda_parallel_tests::checks::{expect, run, watchdog, Check};
use lambda_parallel_tests::{mark, wait_for, TempDir};

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

/// Marks `dir` as started, then runs for longer than the test.
#[lambda_parallel]
fn stuck(dir: String) {
    mark(std::path::Path::new(&dir), "started");
    std::thread::sleep(Duration::from_secs(120));
}

/// The fork server's pid: the parent of the pool's workers.
fn server_of(pool: &Pool) -> u32 {
    let worker = pool.pids()[0];
    let stat = std::fs::read_to_string(format!("/proc/{worker}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

fn kill_server(pool: &Pool) {
    let server = server_of(pool);
    assert_ne!(server, std::process::id(), "workers come from the server");
    let status = std::process::Command::new("kill")
        .args(["-KILL", &server.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Its end is certain once /proc no longer lists it as running (a zombie has state Z).
    while std::fs::read_to_string(format!("/proc/{server}/stat"))
        .is_ok_and(|stat| !stat.contains(") Z "))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn says_server_gone(err: &lambda_parallel::Error) -> Result<(), String> {
    let text = err.to_string();
    expect(text.contains("fork server is gone"), text)
}

fn map_after_server_death() -> Result<(), String> {
    let pool = Pool::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let dir = TempDir::new("server-death");
    let running = pool
        .apply_async(stuck, (dir.path().to_str().unwrap().to_owned(),))
        .map_err(|e| e.to_string())?;
    expect(
        wait_for(dir.path(), "started", Duration::from_secs(10)),
        "the task never started",
    )?;
    let server = server_of(&pool);
    kill_server(&pool);
    // The task's worker dies with the server, and its exit status with it.
    let Err(err) = running.get() else {
        return Err("a task outlived the server".into());
    };
    says_server_gone(&err)?;
    expect(err.kind() == Kind::ServerGone, format!("{:?}", err.kind()))?;
    // The server was this process's child: reaped, not left a zombie, once a call learnt of its
    // death.
    expect(
        !std::path::Path::new(&format!("/proc/{server}")).exists(),
        format!("the dead server {server} was not reaped"),
    )?;
    let Err(err) = pool.map(square, 0..10) else {
        return Err("map succeeded without a server".into());
    };
    says_server_gone(&err)?;
    // And again: the pool stays usable, in that every call fails at once.
    let outcomes = pool.map_each(square, 0..10);
    expect(outcomes.len() == 10, format!("{} outcomes", outcomes.len()))?;
    for outcome in outcomes {
        says_server_gone(&outcome.err().ok_or("an outcome without a server")?)?;
    }
    let first = pool
        .imap(square, 0..3)
        .next()
        .ok_or("imap yielded nothing")?;
    says_server_gone(&first.err().ok_or("imap succeeded without a server")?)?;
    let Err(err) = square::spawn(3) else {
        return Err("spawn succeeded without a server".into());
    };
    says_server_gone(&err)
}

/// What the kernel's OOM killer weighs a process by.
fn oom_score_adj(pid: &str) -> String {
    let path = format!("/proc/{pid}/oom_score_adj");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The same, read in the worker itself.
#[lambda_parallel]
fn own_oom_score_adj() -> String {
    oom_score_adj("self")
}

/// The OOM killer takes a worker, then the server, before it takes the program (issue #11,
/// case 3).
fn workers_and_server_go_first_when_memory_runs_out() -> Result<(), String> {
    let pool = Pool::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let pooled = pool
        .apply(own_oom_score_adj, ())
        .map_err(|e| e.to_string())?;
    let one_off = own_oom_score_adj::spawn()
        .and_then(lambda_parallel::JoinHandle::join)
        .map_err(|e| e.to_string())?;
    let server = oom_score_adj(&server_of(&pool).to_string());
    let ours = oom_score_adj("self");
    expect(
        [&pooled, &one_off, &server] == ["1000"; 3] && ours != "1000",
        format!("pool worker {pooled}, one-off {one_off}, server {server}, program {ours}"),
    )
}

fn main() {
    lambda_parallel::init().expect("init runs first thing in main");
    watchdog("server_death", Duration::from_secs(60));
    let checks: [Check; 2] = [
        (
            "workers and the server go first when memory runs out",
            workers_and_server_go_first_when_memory_runs_out,
        ),
        (
            "a running task, and map after the server died, fail at once, and the server is reaped",
            map_after_server_death,
        ),
    ];
    run("server_death", &checks);
}
