//! When a worker's memory runs past the limit, the OOM killer takes the worker, not the caller,
//! and the worker's error says so (issue #11, case 3): in a 256 MB memory cgroup, inside
//! `lambda-sandbox --memory 256`, a caller holding 150 MiB, with the fork server and without.
//!
//! The binary makes the cgroup itself (below its own: cgroup v1, or v2 with the memory
//! controller delegated), moves into it, and runs itself again there in each mode, inside the
//! sandbox when there is one. Where no cgroup can be made (the sandbox's read-only `/sys`, a
//! container without delegation), it says so and checks nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lambda_parallel::{lambda_parallel, Kind, Pool};
use lambda_parallel_tests::checks::{expect, mode, run, watchdog, Check, MODE};

/// The cgroup's limit, as a Lambda function of 256 MB has.
const LIMIT: u64 = 256 << 20;

/// What the caller holds, touched: more than half the limit, as in the issue.
const HELD: usize = 150 << 20;

/// Allocates and touches `mib` MiB, 8 MiB at a time; returns how much, if it ever gets there.
#[lambda_parallel]
fn hog(mib: usize) -> usize {
    let chunks: Vec<Vec<u8>> = (0..mib / 8).map(|_| vec![1; 8 << 20]).collect();
    std::hint::black_box(&chunks).len() * 8
}

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[lambda_parallel]
fn kill_self() {
    nix::sys::signal::raise(nix::sys::signal::SIGKILL).unwrap();
}

fn says_oom(err: &lambda_parallel::Error) -> Result<(), String> {
    let text = err.to_string();
    expect(
        err.is_oom()
            && err.kind() == Kind::Oom
            && err.signal() == Some(9)
            && text.contains("killed by the OOM killer (SIGKILL)"),
        format!("{text} ({err:?})"),
    )
}

fn a_one_off_worker_past_the_limit_is_oom_killed_and_says_so() -> Result<(), String> {
    match hog::spawn(1024).map_err(|e| e.to_string())?.join() {
        Ok(mib) => Err(format!("the worker got {mib} MiB past a limit of 256 MB")),
        Err(err) => says_oom(&err),
    }
}

fn a_pool_worker_past_the_limit_is_oom_killed_says_so_and_is_replaced() -> Result<(), String> {
    let pool = Pool::new(2).map_err(|e| e.to_string())?;
    match pool.apply(hog, (1024,)) {
        Ok(mib) => return Err(format!("the worker got {mib} MiB past a limit of 256 MB")),
        Err(err) => says_oom(&err)?,
    }
    let squares = pool.map(square, 0..100).map_err(|e| e.to_string())?;
    expect(squares[99] == 99 * 99, format!("{squares:?}"))
}

fn a_sigkill_from_elsewhere_after_an_oom_kill_is_a_plain_sigkill() -> Result<(), String> {
    let err = kill_self::spawn()
        .and_then(lambda_parallel::JoinHandle::join)
        .expect_err("the worker killed itself");
    expect(
        err.signal() == Some(9) && !err.is_oom() && err.kind() == Kind::Signal,
        format!("{err}"),
    )
}

/// One run in the cgroup: `served` starts the fork server first, as a Lambda function does;
/// `direct` forks every worker from the caller.
fn inside(mode: &str) -> ! {
    if mode == "served" {
        lambda_parallel::init().expect("init runs first thing in main");
    }
    watchdog("oom", Duration::from_secs(120));
    let held = vec![1_u8; HELD];
    let checks: [Check; 3] = [
        (
            "a one-off worker past the limit is OOM-killed, and says so",
            a_one_off_worker_past_the_limit_is_oom_killed_and_says_so,
        ),
        (
            "a pool worker past the limit is OOM-killed, says so, and is replaced",
            a_pool_worker_past_the_limit_is_oom_killed_says_so_and_is_replaced,
        ),
        (
            "a SIGKILL from elsewhere after an OOM kill is a plain SIGKILL",
            a_sigkill_from_elsewhere_after_an_oom_kill_is_a_plain_sigkill,
        ),
    ];
    // The caller, holding its memory all along, is alive to report.
    std::hint::black_box(&held);
    run(
        &format!("oom ({mode}, the caller holding 150 MiB)"),
        &checks,
    );
}

/// A memory cgroup of our own below this process's, limited to [`LIMIT`], that this process
/// has moved into; dropping it moves back and removes it.
struct Limited {
    home: PathBuf,
    dir: PathBuf,
}

impl Limited {
    fn enter() -> Result<Limited, String> {
        let cgroups = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let mounts = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let mount = |fstype: &str, option: Option<&str>| {
            mounts.lines().find_map(|line| {
                let (mount, fs) = line.split_once(" - ")?;
                let fs: Vec<&str> = fs.split(' ').collect();
                let matches = fs[0] == fstype
                    && option.is_none_or(|option| fs[2].split(',').any(|o| o == option));
                matches.then(|| mount.split(' ').nth(4).unwrap_or_default().to_owned())
            })
        };
        let v1 = cgroups.lines().find_map(|line| {
            let (controllers, path) = line.split_once(':')?.1.split_once(':')?;
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then_some(path)
        });
        let (home, limit, swap) = if let Some(path) = v1 {
            let root = mount("cgroup", Some("memory")).ok_or("no v1 memory mount")?;
            let home = Path::new(&root).join(path.trim_start_matches('/'));
            (home, "memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        } else {
            let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"));
            let root = mount("cgroup2", None).ok_or("no cgroup2 mount")?;
            let home = Path::new(&root).join(path.ok_or("no v2 cgroup")?.trim_start_matches('/'));
            let delegated = fs::read_to_string(home.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"));
            if !delegated {
                return Err(format!(
                    "{} has no memory controller to hand down",
                    home.display()
                ));
            }
            (home, "memory.max", "memory.swap.max")
        };
        let dir = home.join(format!("lambda-parallel-oom-{}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let limited = Limited { home, dir };
        let write = |file: &str, value: &str| {
            fs::write(limited.dir.join(file), value).map_err(|e| format!("{file}: {e}"))
        };
        write(limit, &LIMIT.to_string())?;
        // No swap to flee to: the limit is the memory's (v1 counts memory and swap together).
        let _ = write(
            swap,
            if swap.ends_with("max") {
                "0"
            } else {
                "268435456"
            },
        );
        write("cgroup.procs", &std::process::id().to_string())?;
        Ok(limited)
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = fs::write(
            self.home.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The Lambda sandbox, if it and its backend are here.
fn sandbox() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/lambda-sandbox");
    let bwrap = Command::new("bwrap").arg("--version").output();
    (path.exists() && bwrap.is_ok_and(|out| out.status.success())).then_some(path)
}

/// The command that runs this binary, `exe`, in `mode`: inside the sandbox, if there is one.
fn run_in(sandbox: Option<&Path>, exe: &Path, mode: &str) -> Command {
    let quiet = "LAMBDA_PARALLEL_NO_THREAD_WARNING";
    let Some(sandbox) = sandbox else {
        let mut command = Command::new(exe);
        command.env(MODE, mode).env(quiet, "1");
        return command;
    };
    let mut command = Command::new(sandbox);
    // The cgroup is the limit, as on Lambda: the sandbox's own emulation of it (`RLIMIT_DATA`)
    // would make allocations fail before the OOM killer acts.
    command.args(["--memory", "256", "--memory-rlimit", "none"]);
    command.args([
        "--env",
        &format!("{MODE}={mode}"),
        "--env",
        &format!("{quiet}=1"),
    ]);
    command.arg("--").arg(exe);
    command
}

fn main() {
    if let Some(mode) = mode() {
        inside(&mode);
    }
    let limited = match Limited::enter() {
        Ok(limited) => limited,
        Err(why) => {
            println!("oom: skipped, no memory cgroup of 256 MB could be made here: {why}");
            return;
        }
    };
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let sandbox = sandbox();
    if sandbox.is_none() {
        println!("oom: lambda-sandbox or bwrap is missing: the runs are in the cgroup alone");
    }
    let mut failed = Vec::new();
    for mode in ["served", "direct"] {
        let status = run_in(sandbox.as_deref(), &exe, mode)
            .status()
            .expect("the test binary runs again");
        if !status.success() {
            failed.push(format!("{mode} ({status})"));
        }
    }
    drop(limited);
    if !failed.is_empty() {
        println!("oom: failed in mode {}", failed.join(", "));
        std::process::exit(1);
    }
}
