//! A worker that crashes costs only the task it was running: the task's error says how the
//! worker ended, the other tasks complete, and a new worker takes the old one's place.

use std::path::{Path, PathBuf};

use lambda_parallel::{lambda_parallel, Error, Pool};
use lambda_parallel_tests::children;
use nix::sys::signal::{self, SigHandler, Signal};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Crash {
    Abort,
    Segfault,
    Exit3,
    Sigkill,
    FailedAllocation,
}

fn raise(signal: Signal) {
    if signal != Signal::SIGKILL {
        // The Rust runtime handles SIGSEGV to report stack overflows, and lets a raised signal
        // through its handler; restore the default action first. (SIGKILL has no handler.)
        // SAFETY: `SIG_DFL` installs no handler code, so no handler can run unsafely.
        unsafe { signal::signal(signal, SigHandler::SigDfl) }.unwrap();
    }
    signal::raise(signal).unwrap();
}

/// Returns `task` doubled, except that task `at` writes its worker's pid to `dir` and crashes,
/// with its stderr in `dir/stderr`: what the crash prints is the test's to read, not the run's.
#[lambda_parallel]
fn crashes_at(dir: PathBuf, at: u32, crash: Crash, task: u32) -> u32 {
    if task != at {
        return 2 * task;
    }
    std::fs::write(dir.join("pid"), std::process::id().to_string()).unwrap();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    nix::unistd::dup2_stderr(stderr).unwrap();
    match crash {
        Crash::Abort => std::process::abort(),
        Crash::Segfault => raise(Signal::SIGSEGV),
        Crash::Exit3 => std::process::exit(3),
        Crash::Sigkill => raise(Signal::SIGKILL),
        Crash::FailedAllocation => {
            let huge = std::hint::black_box(usize::MAX / 2);
            let bytes = Vec::<u8>::with_capacity(huge);
            std::hint::black_box(&bytes);
        }
    }
    unreachable!("the worker crashed")
}

fn crashed_pid(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs 12 tasks on 2 workers, task 5 crashing as `crash` says; checks its error with `check`.
/// Returns what the crashed worker wrote to its stderr.
fn only_the_crashed_task_fails(crash: Crash, check: impl Fn(&Error)) -> String {
    let dir = lambda_parallel_tests::TempDir::new("crash");
    let pool = Pool::builder().workers(2).chunk_size(1).build().unwrap();
    let inputs = (0..12).map(|task| (dir.path().to_owned(), 5, crash, task));
    let outcomes = pool.starmap_each(crashes_at, inputs);
    assert_eq!(outcomes.len(), 12);
    for (task, outcome) in (0..).zip(&outcomes) {
        match outcome {
            Ok(value) => assert_eq!(*value, 2 * task),
            Err(err) => {
                assert_eq!(task, 5, "{err}");
                assert_eq!(err.task_index(), Some(5));
                check(err);
            }
        }
    }
    assert!(outcomes[5].is_err());
    let pid = crashed_pid(dir.path());
    assert!(!children().contains(&pid), "the crashed worker was reaped");
    // The pool has its two workers again, and both serve.
    let served = pool.map(|x: u32| x + 1, 0..20).unwrap();
    assert_eq!(served, (1..21).collect::<Vec<_>>());
    let pids = pool.pids();
    assert_eq!(pids.len(), 2);
    assert!(!pids.contains(&pid));
    std::fs::read_to_string(dir.path().join("stderr")).unwrap()
}

#[test]
fn abort_costs_only_its_task() {
    only_the_crashed_task_fails(Crash::Abort, |err| {
        assert_eq!(err.signal_name(), Some("SIGABRT"), "{err}");
        assert!(err
            .to_string()
            .ends_with("was killed by signal 6 (SIGABRT)"));
    });
}

#[test]
fn segfault_costs_only_its_task() {
    only_the_crashed_task_fails(Crash::Segfault, |err| {
        assert_eq!(err.signal_name(), Some("SIGSEGV"), "{err}");
    });
}

#[test]
fn exit_costs_only_its_task() {
    only_the_crashed_task_fails(Crash::Exit3, |err| {
        assert_eq!(err.exit_code(), Some(3), "{err}");
        assert_eq!(
            err.to_string(),
            "task 5 of worker `pool_crashes::crashes_at` exited with code 3 without a result"
        );
    });
}

#[test]
fn sigkill_costs_only_its_task() {
    only_the_crashed_task_fails(Crash::Sigkill, |err| {
        assert_eq!(err.signal_name(), Some("SIGKILL"), "{err}");
        assert!(!err.is_timeout());
    });
}

#[test]
fn failed_allocation_costs_only_its_task() {
    let stderr = only_the_crashed_task_fails(Crash::FailedAllocation, |err| {
        // Rust aborts when an allocation fails.
        assert_eq!(err.signal_name(), Some("SIGABRT"), "{err}");
    });
    let huge = usize::MAX / 2;
    let said = format!("memory allocation of {huge} bytes failed\n");
    assert!(stderr.starts_with(&said), "{stderr}");
}

#[test]
fn crash_mid_batch_fails_one_task_and_runs_the_rest_of_the_batch() {
    let dir = lambda_parallel_tests::TempDir::new("crash-batch");
    let pool = Pool::builder().workers(2).chunk_size(4).build().unwrap();
    let inputs = (0..16).map(|task| (dir.path().to_owned(), 5, Crash::Abort, task));
    let outcomes = pool.starmap_each(crashes_at, inputs);
    for (task, outcome) in (0..).zip(&outcomes) {
        if task == 5 {
            assert_eq!(outcome.as_ref().unwrap_err().signal_name(), Some("SIGABRT"));
        } else {
            assert_eq!(*outcome.as_ref().unwrap(), 2 * task);
        }
    }
}

#[test]
fn pool_has_its_full_worker_count_right_after_a_crash() {
    let dir = lambda_parallel_tests::TempDir::new("crash-count");
    let pool = Pool::new(2).unwrap();
    let err = pool
        .apply(crashes_at, (dir.path().to_owned(), 0, Crash::Abort, 0))
        .unwrap_err();
    assert_eq!(err.signal_name(), Some("SIGABRT"));
    let pids = pool.pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(!pids.contains(&crashed_pid(dir.path())));
}

#[test]
fn map_fails_fast_on_a_crash() {
    let dir = lambda_parallel_tests::TempDir::new("crash-map");
    let pool = Pool::new(2).unwrap();
    let inputs = (0..10).map(|task| (dir.path().to_owned(), 3, Crash::Exit3, task));
    let err = pool.starmap(crashes_at, inputs).unwrap_err();
    assert_eq!(err.task_index(), Some(3));
    assert_eq!(err.exit_code(), Some(3));
}

/// Writes its worker's pid to `dir`, then dies of `SIGKILL` after `delay_ms`.
#[lambda_parallel]
fn killed_after(dir: PathBuf, delay_ms: u64) -> u8 {
    std::fs::write(dir.join("pid"), std::process::id().to_string()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    raise(Signal::SIGKILL);
    0
}

#[lambda_parallel]
fn tiny(x: u64) -> u64 {
    x + 1
}

#[test]
fn a_crash_is_seen_while_the_other_worker_answers_as_fast_as_the_pool_asks() {
    // Round trips this quick are caught by the pool's spin, which then reads the rings without
    // polling the workers' descriptors. The death must still be seen, and the dead worker
    // reaped, while the round trips go on, not only once they stop; nothing here but the round
    // trips drives the pool. (This checks that it is seen, not how soon: any spin that misses
    // polls too, and in a debug build many do, so the 1 ms bound itself (`LOOK_AROUND`) is
    // not what makes this pass.)
    let dir = lambda_parallel_tests::TempDir::new("quick-and-dead");
    let pool = Pool::new(2).unwrap();
    let doomed = pool
        .apply_async(killed_after, (dir.path().to_owned(), 30))
        .unwrap();
    let started = std::time::Instant::now();
    let pid_file = dir.path().join("pid");
    let mut pid = None;
    let mut trips = 0_u64;
    loop {
        assert_eq!(pool.apply(tiny, (trips,)).unwrap(), trips + 1);
        trips += 1;
        if trips.is_multiple_of(64) {
            pid = pid.or_else(|| std::fs::read_to_string(&pid_file).ok());
            if pid
                .as_ref()
                .is_some_and(|pid| !Path::new(&format!("/proc/{}", pid.trim())).exists())
            {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "the death went unseen through {trips} round trips"
            );
        }
    }
    let err = doomed.get().unwrap_err();
    assert_eq!(err.signal(), Some(Signal::SIGKILL as i32), "{err}");
}
