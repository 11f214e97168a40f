//! Workers forked by the fork server (`lambda_parallel::init`) are safe in a process whose other
//! threads hold locks: the situation of every Lambda handler on a multithreaded tokio runtime.
//!
//! `init` must run before any thread exists, so this test binary has its own `main` (no test
//! harness). It prints `fork_server: N passed, N failed` and exits non-zero on a failure.
//!
//! The workers and the hammer threads print, into a capture of stdout that the last check
//! counts, so that none of it scrolls past the test run.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_parallel::{lambda_parallel, JoinSet, Pool};
use lambda_parallel_tests::checks::{expect, report_to, watchdog, CapturedStdout, Check};

/// The lines the hammer threads printed.
static HAMMERED: AtomicU64 = AtomicU64::new(0);

/// How many `worker PID summed N values` lines the checks' tasks print, by `N`: the busy
/// runtime's 1,000 tasks and ten one-off workers twice (blocking, then awaited), and the rest.
const WORKER_LINES: [(usize, usize); 3] = [(500, 2_000), (100, 21), (10, 21)];

#[lambda_parallel]
fn checksum(seed: u64, len: u32) -> u64 {
    // Allocates and prints, as real workers do: both would hang in a child forked while another
    // thread held the allocator's or stdout's lock.
    let data: Vec<u64> = (0..u64::from(len))
        .map(|i| i.wrapping_mul(seed) ^ seed)
        .collect();
    println!("worker {} summed {} values", std::process::id(), data.len());
    data.iter().fold(0, |acc, x| acc.rotate_left(5) ^ x)
}

fn expected(seed: u64, len: u32) -> u64 {
    (0..u64::from(len))
        .map(|i| i.wrapping_mul(seed) ^ seed)
        .fold(0, |acc, x| acc.rotate_left(5) ^ x)
}

#[lambda_parallel]
fn fails(how: u8) -> u8 {
    match how {
        0 => panic!("failed on purpose"),
        1 => std::process::abort(),
        _ => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
    }
}

fn main() {
    // Before `init`, so that the fork server's workers inherit the capture as their stdout.
    let captured = CapturedStdout::start();
    let mut terminal = captured
        .terminal()
        .try_clone()
        .expect("stdout can be duplicated");
    let refused = std::thread::spawn(lambda_parallel::init).join().unwrap();
    let refused = match refused {
        Ok(()) => Err("init succeeded on another thread".to_owned()),
        Err(err) => expect(err.to_string().contains("main thread"), err.to_string()),
    };
    lambda_parallel::init().expect("init runs first thing in main");
    watchdog("fork_server", Duration::from_secs(300));
    let checks: [Check; 9] = [
        ("init twice is fine", init_twice),
        (
            "workers are not children of the caller",
            workers_are_not_children,
        ),
        (
            "one-off failures are reported through the server",
            failures_are_reported,
        ),
        ("1,000 tasks under a busy tokio runtime", busy_tokio_runtime),
        (
            "1,000 awaited tasks under a busy tokio runtime",
            busy_tokio_runtime_awaited,
        ),
        ("awaited workers are served too", awaited_workers),
        ("a JoinSet of served workers", served_join_set),
        (
            "a pool's initializer runs in each served worker",
            initializer_in_served_workers,
        ),
        ("nothing leaks", nothing_leaks),
    ];
    let outcomes = std::iter::once(("init is refused off the main thread", refused))
        .chain(checks.into_iter().map(|(name, check)| (name, check())))
        .chain(std::iter::once_with(|| {
            let name = "every line printed reaches stdout whole, once";
            (name, printed_lines(&captured.finish()))
        }));
    report_to(&mut terminal, "fork_server", outcomes)
}

/// What the checks printed: each hammer line, and one line from each worker task, none of them
/// torn or interleaved with another.
fn printed_lines(captured: &str) -> Result<(), String> {
    let (mut hammered, mut summed) = (0, Vec::new());
    for line in captured.lines() {
        if line.starts_with("hammer ") && line.ends_with(')') && line.contains(" holds the locks (")
        {
            hammered += 1;
            continue;
        }
        let values = line
            .strip_prefix("worker ")
            .and_then(|rest| rest.split_once(" summed "))
            .filter(|(pid, _)| pid.parse::<u32>().is_ok())
            .and_then(|(_, rest)| rest.strip_suffix(" values")?.parse::<usize>().ok());
        match values {
            Some(values) => summed.push(values),
            None => {
                return Err(format!(
                    "a line neither a hammer's nor a worker's: {line:?}"
                ))
            }
        }
    }
    let expected = HAMMERED.load(Ordering::Relaxed);
    expect(
        hammered == expected,
        format!("{hammered} hammer lines, not {expected}"),
    )?;
    for (values, lines) in WORKER_LINES {
        let found = summed.iter().filter(|&&n| n == values).count();
        expect(
            found == lines,
            format!("{found} lines of {values} values, not {lines}"),
        )?;
    }
    let lines: usize = WORKER_LINES.iter().map(|(_, lines)| lines).sum();
    expect(
        summed.len() == lines,
        format!("{} worker lines, not {lines}", summed.len()),
    )
}

fn init_twice() -> Result<(), String> {
    lambda_parallel::init().map_err(|err| err.to_string())
}

fn workers_are_not_children() -> Result<(), String> {
    let handle = checksum::spawn(3, 10).map_err(|err| err.to_string())?;
    let pid = handle.pid();
    let children = lambda_parallel_tests::children();
    let value = handle.join().map_err(|err| err.to_string())?;
    expect(value == expected(3, 10), "wrong checksum")?;
    expect(
        !children.contains(&pid),
        format!("worker {pid} is among {children:?}"),
    )?;
    expect(
        children.len() == 1,
        format!("only the server is a child: {children:?}"),
    )
}

fn failures_are_reported() -> Result<(), String> {
    let spawn = |how| fails::spawn(how).map_err(|err| err.to_string());
    let err = spawn(0)?.join().expect_err("a panic");
    expect(
        err.panic_message() == Some("failed on purpose"),
        err.to_string(),
    )?;
    expect(
        err.panic_location().is_some(),
        "the location crosses the server too",
    )?;
    let err = spawn(1)?.join().expect_err("an abort");
    expect(err.signal_name() == Some("SIGABRT"), err.to_string())?;
    let err = spawn(2)?
        .join_timeout(Duration::from_millis(50))
        .expect_err("a timeout");
    expect(err.is_timeout(), err.to_string())?;
    let mut handle = spawn(2)?;
    handle.kill().map_err(|err| err.to_string())?;
    let err = handle.join().expect_err("killed");
    expect(err.signal_name() == Some("SIGKILL"), err.to_string())
}

fn busy_tokio_runtime() -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .map_err(|err| err.to_string())?;
    hammered(|| {
        let pool = Arc::new(Pool::new(2).map_err(|err| err.to_string())?);
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for handler in 0..10_u64 {
                let pool = pool.clone();
                // Each "invocation" maps 100 tasks from a blocking section of an async handler.
                tasks.push(tokio::task::spawn_blocking(move || {
                    let inputs: Vec<(u64, u32)> =
                        (0..100).map(|i| (handler * 100 + i, 500)).collect();
                    let results = pool.starmap(checksum, inputs.clone())?;
                    let one_off = checksum::spawn(handler, 100)?.join()?;
                    Ok::<_, lambda_parallel::Error>((inputs, results, handler, one_off))
                }));
            }
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.map_err(|err| err.to_string())?);
            }
            check_handlers(outcomes)
        })
    })
}

/// The same 1,000 tasks, awaited: every call on the reactor, none on a blocking thread.
fn busy_tokio_runtime_awaited() -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    hammered(|| {
        let pool = Pool::new(2).map_err(|err| err.to_string())?;
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for handler in 0..10_u64 {
                let pool = pool.clone();
                tasks.push(tokio::spawn(async move {
                    let inputs: Vec<(u64, u32)> =
                        (0..100).map(|i| (handler * 100 + i, 500)).collect();
                    let results = pool.starmap_async(checksum, inputs.clone())?.await?;
                    let one_off = checksum::spawn(handler, 100)?.await?;
                    Ok::<_, lambda_parallel::Error>((inputs, results, handler, one_off))
                }));
            }
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.map_err(|err| err.to_string())?);
            }
            check_handlers(outcomes)
        })
    })
}

type Handled = Result<(Vec<(u64, u32)>, Vec<u64>, u64, u64), lambda_parallel::Error>;

/// Checks what each of the ten handlers computed: 1,000 tasks and ten one-off workers.
fn check_handlers(outcomes: Vec<Handled>) -> Result<(), String> {
    let mut checked = 0;
    for outcome in outcomes {
        let (inputs, results, handler, one_off) = outcome.map_err(|err| err.to_string())?;
        for ((seed, len), result) in inputs.iter().zip(&results) {
            expect(
                *result == expected(*seed, *len),
                format!("task {seed} wrong"),
            )?;
            checked += 1;
        }
        expect(one_off == expected(handler, 100), "one-off wrong")?;
    }
    expect(checked == 1_000, format!("{checked} results checked"))
}

/// Runs `body` while two threads hold stdout's lock and a shared mutex nearly all the time:
/// a worker forked from this process at such a moment would inherit them locked.
fn hammered(body: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Mutex::new(0_u64));
    // Threads that hold stdout's lock and a shared mutex nearly all the time.
    let hammers: Vec<_> = (0..2)
        .map(|i| {
            let (stop, shared) = (stop.clone(), shared.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut guard = shared.lock().unwrap();
                    *guard += 1;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "hammer {i} holds the locks ({})", *guard);
                    HAMMERED.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let result = body();
    stop.store(true, Ordering::Relaxed);
    for hammer in hammers {
        hammer.join().map_err(|_| "a hammer thread panicked")?;
    }
    expect(HAMMERED.load(Ordering::Relaxed) > 0, "the hammers ran")?;
    result
}

/// `.await` waits for a served worker's exit record on the reactor, where `join` reads it.
fn awaited_workers() -> Result<(), String> {
    let fds = lambda_parallel_tests::open_fds();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    runtime.block_on(async {
        let spawn = |how| fails::spawn(how).map_err(|err| err.to_string());
        let value = checksum::spawn(5, 100)
            .map_err(|err| err.to_string())?
            .await
            .map_err(|err| err.to_string())?;
        expect(value == expected(5, 100), "wrong checksum")?;
        let err = spawn(0)?.await.expect_err("a panic");
        expect(
            err.panic_message() == Some("failed on purpose"),
            err.to_string(),
        )?;
        let err = spawn(1)?.await.expect_err("an abort");
        expect(err.signal_name() == Some("SIGABRT"), err.to_string())?;
        let stuck = tokio::time::timeout(Duration::from_millis(50), spawn(2)?).await;
        expect(
            stuck.is_err(),
            format!("the stuck worker returned: {stuck:?}"),
        )
    })?;
    drop(runtime);
    expect(
        lambda_parallel_tests::open_fds() == fds,
        "descriptors leaked",
    )
}

fn served_join_set() -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let stuck = runtime.block_on(async {
        let mut set = JoinSet::new();
        for x in 0..5 {
            set.spawn(offset, (x,)).map_err(|err| err.to_string())?;
        }
        let stuck = fails::spawn(2).map_err(|err| err.to_string())?;
        let pid = stuck.pid();
        let mut set_of_one = JoinSet::new();
        set_of_one.insert(stuck);
        let mut sum = 0;
        while let Some(outcome) = set.join_next().await {
            sum += outcome.map_err(|err| err.to_string())?;
        }
        expect(sum == 10, format!("the sum is {sum}"))?;
        // Killed by the drop, and reaped by the server.
        drop(set_of_one);
        Ok::<_, String>(pid)
    })?;
    expect(
        lambda_parallel_tests::reaped_within(stuck, Duration::from_secs(5)),
        format!("worker {stuck} outlived its set"),
    )
}

/// What `set_offset` set in this worker.
static OFFSET: AtomicU64 = AtomicU64::new(0);

#[lambda_parallel]
fn set_offset(offset: u64) {
    OFFSET.store(offset, Ordering::Relaxed);
}

#[lambda_parallel]
fn offset(x: u64) -> u64 {
    x + OFFSET.load(Ordering::Relaxed)
}

fn initializer_in_served_workers() -> Result<(), String> {
    // One task a worker: each runs in a fresh worker of the server, after its initializer.
    let pool = Pool::builder()
        .workers(2)
        .max_tasks_per_worker(1)
        .chunk_size(1)
        .initializer(set_offset, (1_000,))
        .build()
        .map_err(|err| err.to_string())?;
    let sums = pool.map(offset, 0..6).map_err(|err| err.to_string())?;
    expect(
        sums == [1_000, 1_001, 1_002, 1_003, 1_004, 1_005],
        format!("{sums:?}"),
    )
}

fn nothing_leaks() -> Result<(), String> {
    let fds = lambda_parallel_tests::open_fds();
    let children = lambda_parallel_tests::children();
    {
        let pool = Pool::new(2).map_err(|err| err.to_string())?;
        let results = pool.map_each(fails, [0, 1]);
        expect(results.iter().all(Result::is_err), "both fail")?;
        for i in 0..20 {
            checksum::spawn(i, 10)
                .map_err(|err| err.to_string())?
                .join()
                .map_err(|e| e.to_string())?;
        }
        drop(fails::spawn(2).map_err(|err| err.to_string())?);
    }
    expect(
        lambda_parallel_tests::open_fds() == fds,
        "descriptors leaked",
    )?;
    expect(
        lambda_parallel_tests::children() == children,
        "processes leaked",
    )
}
