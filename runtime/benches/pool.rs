//! The performance bar of `shared/BENCHMARKS.md`: every workload, side by side with its
//! baselines, in one run, printed as one table.
//!
//! ```text
//! cargo bench --bench pool                  # everything, about a minute on 2 cores
//! cargo bench --bench pool -- --quick       # fewer repetitions: a smoke run (CI)
//! cargo bench --bench pool -- W2 W5b       # only the workloads named
//! # The same, unchanged, inside the Lambda-shaped sandbox (no /dev/shm, 1024 descriptors). The
//! # sandbox hides the host's /tmp: with a target directory there, add `--ro "$CARGO_TARGET_DIR"`.
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="../shared/tools/lambda-sandbox --" \
//!     cargo bench --bench pool
//! ```
//!
//! `main` calls [`lambda_parallel::init`] first, as the crate documentation asks a Lambda
//! function to do, so workers fork from the fork server; `--no-init` forks them straight from
//! the benchmark instead, for comparison. `BENCH_QUICK=1` does what `--quick` does. Run without
//! `--bench` (as `cargo test --benches` does), the benchmark makes a quick run too.
//!
//! Every figure is the median of several repetitions, printed with their count and
//! min–median–max. Baselines run in the same process, interleaved with our figure repetition by
//! repetition, so that the machine's noise falls on both; on a shared 2-core machine, trust the
//! ratio more than the absolute figure. `ours/base` is always our median over the baseline's.
//!
//! | id | workload | baselines |
//! |---|---|---|
//! | W1 | 100,000 `square(u64)` through [`Pool::map`] on 2 workers, default batching, ns per task (pool creation excluded) | `serial` loop; `threads`: rayon `par_iter` on 2 threads |
//! | W1b | 10,000 sequential [`Pool::apply`] round trips, µs each | `raw pipe`: a pre-forked child echoing 8 bytes over two pipes |
//! | W2 | 64 × 1 MiB `echo(Vec<u8>)` through `map` on 2 workers, MiB/s (128 MiB moved) | `raw pipe`: 64 × 1 MiB echoed by a pre-forked child over two 1 MiB pipes, one in flight |
//! | W3 | PBKDF2-HMAC-SHA256, 10,000 iterations, of 200 passwords through `map` on 2 workers: speedup over `serial` | `threads`: the speedup of rayon on 2 threads |
//! | W4 | build a 2-worker pool, run one task, drop it (children killed and reaped), ms | `raw fork×2`: fork two echo children, one round trip, kill and reap both |
//! | W5 | one-off `spawn(..).join()` of a trivial `#[lambda_parallel]` fn, µs | `raw fork`: pipe, fork, the child writes 8 bytes, read, `waitpid` |
//! | W5b | W5 while the parent has 1 GiB of touched heap, ms | `raw fork` from that parent |
//! | W6 | USS (private memory) of each idle worker of a fresh 2-worker pool, MiB; the parent's peak RSS during W2, MiB | a raw forked child's USS; the 64 MiB of task data in flight |
//!
//! W6's parent peak is `VmHWM`, reset just before W2's call with `/proc/self/clear_refs`, so
//! it is the peak of that call alone (with its 64 MiB of inputs); where the reset is refused,
//! it runs once, and the row says that it is the peak of the whole process so far.

#![allow(
    clippy::cast_precision_loss,
    reason = "figures are counts and durations far below 2^52, printed to three digits"
)]

mod support;

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use lambda_parallel::{lambda_parallel, Pool};
use rayon::prelude::*;

use crate::support::memory;
use crate::support::raw::{self, EchoChild};
use crate::support::report::{self, Figure, Row};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

const MIB: usize = 1 << 20;

/// A workload: its rows of the table.
type Workload = fn(&Config) -> Result<Vec<Row>>;

/// How the benchmark was asked to run.
struct Config {
    quick: bool,
    /// Whether workers fork from the fork server ([`lambda_parallel::init`]), as the crate
    /// documentation asks a Lambda function to do, or straight from this process.
    fork_server: bool,
    filters: Vec<String>,
}

impl Config {
    fn from_args() -> Config {
        let mut bench = false;
        let mut quick = std::env::var_os("BENCH_QUICK").is_some_and(|value| value != "0");
        let mut fork_server = true;
        let mut filters = Vec::new();
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--bench" => bench = true,
                "--quick" => quick = true,
                "--no-init" => fork_server = false,
                flag if flag.starts_with('-') => {}
                filter => filters.push(filter.to_ascii_lowercase()),
            }
        }
        Config {
            quick: quick || !bench,
            fork_server,
            filters,
        }
    }

    /// The repetitions of a measurement: `full`, or a quarter of it (at least 3) when quick.
    fn reps(&self, full: usize) -> usize {
        if self.quick {
            (full / 4).max(3)
        } else {
            full
        }
    }

    fn wants(&self, id: &str) -> bool {
        let id = id.to_ascii_lowercase();
        self.filters.is_empty() || self.filters.contains(&id)
    }
}

/// Runs `f` and returns how long it took, in seconds, with what it returned (dropped by the
/// caller, after the clock stopped).
fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let started = Instant::now();
    let value = black_box(f());
    (started.elapsed().as_secs_f64(), value)
}

/// Returns the heap that the last workload freed to the system. glibc keeps freed memory
/// resident (here up to the 64 MiB of W2's values) and every later fork copies its page tables,
/// which would charge one workload for the one before it.
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `malloc_trim` only releases free memory of the allocator that owns it.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn check(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("wrong result: {what}").into())
    }
}

fn main() -> Result<()> {
    let config = Config::from_args();
    // First thing, while this process has one thread (rayon's come later).
    if config.fork_server {
        lambda_parallel::init()?;
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    // Process start-up and memory first, while this process is small: the time of a fork grows
    // with the parent's resident memory. The 1 GiB parent last, so that it slows nothing else.
    let workloads: [(&str, Workload); 8] = [
        ("W4", w4_pool_lifetime),
        ("W5", w5_spawn),
        ("W6", w6_memory),
        ("W1b", w1b_round_trip),
        ("W2", w2_throughput),
        ("W1", w1_map),
        ("W3", w3_pbkdf2),
        ("W5b", w5b_spawn_big_parent),
    ];
    for (id, workload) in workloads {
        if config.wants(id) {
            eprintln!("running {id}…");
            rows.extend(workload(&config)?);
            give_back_freed_memory();
        }
    }
    // Table order: by id (W1, W1b, W2, …); a workload's rows keep their order.
    rows.sort_by_key(|row| row.id);
    println!();
    report::print_table(&rows);
    println!(
        "\n{} mode, workers forked {}, {} CPUs{}, {:.0} s. ours/base: our median over the \
         baseline's.",
        if config.quick { "quick" } else { "full" },
        if config.fork_server {
            "from the fork server (init)"
        } else {
            "from this process (--no-init)"
        },
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        if std::env::var_os("LAMBDA_SANDBOX").is_some() {
            ", inside lambda-sandbox"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// W1 and W1b: many tiny tasks.

const W1_TASKS: u64 = 100_000;
const W1B_ROUND_TRIPS: u64 = 10_000;

fn square(x: u64) -> u64 {
    x * x
}

fn w1_map(config: &Config) -> Result<Vec<Row>> {
    let pool = Pool::new(2)?;
    let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    let expected: Vec<u64> = (0..W1_TASKS).map(square).collect();
    let (mut ours, mut serial, mut parallel) =
        (Figure::default(), Figure::default(), Figure::default());
    let per_task = |secs: f64| secs * 1e9 / W1_TASKS as f64;
    // One unmeasured round first: the first call pays for page faults the others do not.
    for rep in 0..=config.reps(25) {
        let (secs, results) = time(|| pool.map(square, 0..W1_TASKS));
        check(results? == expected, "W1 pool")?;
        let record = |figure: &mut Figure, secs| (rep > 0).then(|| figure.push(per_task(secs)));
        record(&mut ours, secs);
        let (secs, results) = time(|| (0..black_box(W1_TASKS)).map(square).collect::<Vec<_>>());
        check(results == expected, "W1 serial")?;
        record(&mut serial, secs);
        let (secs, results) = time(|| {
            threads.install(|| {
                (0..black_box(W1_TASKS))
                    .into_par_iter()
                    .map(square)
                    .collect::<Vec<_>>()
            })
        });
        check(results == expected, "W1 threads")?;
        record(&mut parallel, secs);
    }
    let met = ours.median() <= 100.0;
    let measured = "100k square() via map, ns/task";
    Ok(vec![
        Row {
            id: "W1",
            measured: measured.into(),
            ours: ours.clone(),
            baseline: Some(("serial", serial)),
            target: "≤ 100 ns",
            met: Some(met),
        },
        Row {
            id: "W1",
            measured: measured.into(),
            ours,
            baseline: Some(("threads", parallel)),
            target: "",
            met: None,
        },
    ])
}

fn w1b_round_trip(config: &Config) -> Result<Vec<Row>> {
    let pool = Pool::new(2)?;
    let mut raw = EchoChild::spawn(8, None)?;
    let (mut ours, mut baseline) = (Figure::default(), Figure::default());
    let per_trip = |secs: f64| secs * 1e6 / W1B_ROUND_TRIPS as f64;
    for rep in 0..=config.reps(21) {
        let (secs, sum) = time(|| {
            (0..W1B_ROUND_TRIPS).try_fold(0_u64, |sum, x| {
                Ok::<_, lambda_parallel::Error>(sum + pool.apply(square, (x,))?)
            })
        });
        check(sum? == (0..W1B_ROUND_TRIPS).map(square).sum(), "W1b pool")?;
        let (raw_secs, sum) = time(|| {
            let mut reply = [0_u8; 8];
            (0..W1B_ROUND_TRIPS).try_fold(0_u64, |sum, x| {
                raw.round_trip(&x.to_le_bytes(), &mut reply)?;
                Ok::<_, std::io::Error>(sum + u64::from_le_bytes(reply))
            })
        });
        check(sum? == (0..W1B_ROUND_TRIPS).sum(), "W1b raw")?;
        if rep > 0 {
            ours.push(per_trip(secs));
            baseline.push(per_trip(raw_secs));
        }
    }
    Ok(vec![Row {
        id: "W1b",
        measured: "10k sequential apply(), µs/round trip".into(),
        met: Some(ours.median() <= 6.0),
        ours,
        baseline: Some(("raw pipe", baseline)),
        target: "≤ 6 µs",
    }])
}

// W2 and W6: large values, and memory.

const W2_TASKS: usize = 64;

fn echo(value: Vec<u8>) -> Vec<u8> {
    value
}

/// One task's payload: 1 MiB of a pattern that a misplaced byte would break.
fn payload() -> Vec<u8> {
    (0..=250).cycle().take(MIB).collect()
}

fn w2_throughput(config: &Config) -> Result<Vec<Row>> {
    let pool = Pool::new(2)?;
    let mut raw = EchoChild::spawn(MIB, Some(1 << 20))?;
    let payload = payload();
    let mut reply = vec![0_u8; MIB];
    let (mut ours, mut baseline) = (Figure::default(), Figure::default());
    let moved = (2 * W2_TASKS) as f64;
    for rep in 0..=config.reps(21) {
        let inputs = vec![payload.clone(); W2_TASKS];
        let (secs, results) = time(|| pool.map(echo, inputs));
        let results = results?;
        check(
            results.len() == W2_TASKS && results.iter().all(|r| *r == payload),
            "W2 pool",
        )?;
        drop(results);
        let (raw_secs, echoed) =
            time(|| (0..W2_TASKS).try_for_each(|_| raw.round_trip(&payload, &mut reply)));
        echoed?;
        check(reply == payload, "W2 raw")?;
        if rep > 0 {
            ours.push(moved / secs);
            baseline.push(moved / raw_secs);
        }
    }
    let met = ours.median() >= 1500.0 && ours.median() >= 0.75 * baseline.median();
    Ok(vec![Row {
        id: "W2",
        measured: "64 × 1 MiB echo() via map, MiB/s".into(),
        ours,
        baseline: Some(("raw pipe", baseline)),
        target: "≥ 1500, ≥ 0.75× raw",
        met: Some(met),
    }])
}

fn w6_memory(config: &Config) -> Result<Vec<Row>> {
    // Each idle worker of a fresh pool, next to an idle raw child forked at the same moment.
    let (mut workers, mut raw_children) = (Figure::default(), Figure::default());
    for _ in 0..config.reps(5) {
        let pool = Pool::new(2)?;
        let raw = EchoChild::spawn(8, None)?;
        for pid in pool.pids().into_iter().chain([raw.pid()]) {
            if !memory::wait_until_idle(pid)? {
                return Err(format!("W6: process {pid} did not become idle").into());
            }
        }
        for pid in pool.pids() {
            workers.push(memory::uss_kib(pid)? as f64 / 1024.0);
        }
        raw_children.push(memory::uss_kib(raw.pid())? as f64 / 1024.0);
    }
    let met = workers.median() <= 2.0;
    let mut rows = vec![Row {
        id: "W6",
        measured: "USS of an idle pool worker, MiB".into(),
        ours: workers,
        baseline: Some(("raw child", raw_children)),
        target: "≤ 2 MiB",
        met: Some(met),
    }];

    // The parent's peak RSS during W2's call, against the task data in flight.
    let pool = Pool::new(2)?;
    let payload = payload();
    let in_flight = (W2_TASKS * MIB) as f64 / MIB as f64;
    let (mut peaks, mut flight) = (Figure::default(), Figure::default());
    let resettable = memory::reset_peak_rss();
    for _ in 0..if resettable { config.reps(3) } else { 1 } {
        memory::reset_peak_rss();
        let inputs = vec![payload.clone(); W2_TASKS];
        let results = pool.map(echo, inputs)?;
        peaks.push(memory::own_status_kib("VmHWM:")? as f64 / 1024.0);
        flight.push(in_flight);
        check(results.iter().all(|r| *r == payload), "W6 pool")?;
    }
    let met = peaks.median() <= 3.0 * in_flight;
    rows.push(Row {
        id: "W6",
        measured: if resettable {
            "parent peak RSS in W2, MiB".into()
        } else {
            "parent peak RSS in W2 (process peak), MiB".into()
        },
        ours: peaks,
        baseline: Some(("in flight", flight)),
        target: "≤ 3× in flight",
        met: Some(met),
    });
    Ok(rows)
}

// W3: CPU-bound work.

const W3_PASSWORDS: usize = 200;
const W3_ROUNDS: u32 = 10_000;

#[expect(
    clippy::needless_pass_by_value,
    reason = "a pool task owns its arguments"
)]
fn hash_password(password: String) -> [u8; 32] {
    let mut key = [0_u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        b"lambda-parallel",
        W3_ROUNDS,
        &mut key,
    );
    key
}

fn w3_pbkdf2(config: &Config) -> Result<Vec<Row>> {
    let pool = Pool::new(2)?;
    let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    let passwords: Vec<String> = (0..W3_PASSWORDS)
        .map(|i| format!("correct horse {i}"))
        .collect();
    let (mut ours, mut parallel, mut serial) =
        (Figure::default(), Figure::default(), Figure::default());
    for _ in 0..config.reps(15) {
        let inputs = passwords.clone();
        let (serial_secs, expected) =
            time(|| inputs.into_iter().map(hash_password).collect::<Vec<_>>());
        serial.push(serial_secs);
        let inputs = passwords.clone();
        let (secs, results) = time(|| pool.map(hash_password, inputs));
        check(results? == expected, "W3 pool")?;
        ours.push(serial_secs / secs);
        let inputs = passwords.clone();
        let (secs, results) = time(|| {
            threads.install(|| {
                inputs
                    .into_par_iter()
                    .map(hash_password)
                    .collect::<Vec<_>>()
            })
        });
        check(results == expected, "W3 threads")?;
        parallel.push(serial_secs / secs);
    }
    let met = ours.median() >= 1.90 && ours.median() >= 0.95 * parallel.median();
    Ok(vec![Row {
        id: "W3",
        measured: format!(
            "200 × PBKDF2 10k via map: speedup (serial {:.2} s)",
            serial.median()
        ),
        ours,
        baseline: Some(("threads", parallel)),
        target: "≥ 1.90×, ≥ 0.95× threads",
        met: Some(met),
    }])
}

// W4, W5 and W5b: starting and ending processes.

fn w4_pool_lifetime(config: &Config) -> Result<Vec<Row>> {
    let (mut ours, mut baseline) = (Figure::default(), Figure::default());
    for rep in 0..=config.reps(51) {
        let (secs, result) = time(|| {
            let pool = Pool::new(2)?;
            pool.apply(square, (3,))
            // The pool drops here: its workers are killed and reaped, inside the clock.
        });
        check(result? == 9, "W4 pool")?;
        let (raw_secs, reply) = time(|| {
            let mut first = EchoChild::spawn(8, None)?;
            let _second = EchoChild::spawn(8, None)?;
            let mut reply = [0_u8; 8];
            first.round_trip(&3_u64.to_le_bytes(), &mut reply)?;
            Ok::<_, std::io::Error>(reply)
        });
        check(reply? == 3_u64.to_le_bytes(), "W4 raw")?;
        if rep > 0 {
            ours.push(secs * 1e3);
            baseline.push(raw_secs * 1e3);
        }
    }
    Ok(vec![Row {
        id: "W4",
        measured: "new pool(2) + 1 task + drop, ms".into(),
        met: Some(ours.median() <= 1.0),
        ours,
        baseline: Some(("raw fork×2", baseline)),
        target: "≤ 1 ms",
    }])
}

/// W5's task.
#[lambda_parallel]
fn increment(x: u64) -> u64 {
    x + 1
}

/// Our figure and the raw fork's, for `reps` one-off workers, in `unit`s of a second.
fn spawn_join(reps: usize, unit: f64) -> Result<(Figure, Figure)> {
    let (mut ours, mut baseline) = (Figure::default(), Figure::default());
    for rep in 0..=reps {
        let (secs, result) = time(|| increment::spawn(41)?.join());
        check(result? == 42, "W5 spawn")?;
        let (raw_secs, result) = time(|| raw::fork_write_wait(41));
        check(result? == 42, "W5 raw")?;
        if rep > 0 {
            ours.push(secs * unit);
            baseline.push(raw_secs * unit);
        }
    }
    Ok((ours, baseline))
}

fn w5_spawn(config: &Config) -> Result<Vec<Row>> {
    let (ours, baseline) = spawn_join(config.reps(301), 1e6)?;
    Ok(vec![Row {
        id: "W5",
        measured: "spawn().join() of a trivial fn, µs".into(),
        met: Some(ours.median() <= 150.0),
        ours,
        baseline: Some(("raw fork", baseline)),
        target: "≤ 150 µs",
    }])
}

fn w5b_spawn_big_parent(config: &Config) -> Result<Vec<Row>> {
    const HEAP: usize = 1 << 30;
    let mut heap: Vec<u8> = Vec::new();
    if heap.try_reserve_exact(HEAP).is_err() {
        return Err("W5b: cannot allocate 1 GiB (run it on a machine with the memory)".into());
    }
    // Writing every byte makes every page resident: the page tables a fork copies.
    heap.resize(HEAP, 1);
    black_box(&heap);
    let (ours, baseline) = spawn_join(config.reps(15), 1e3)?;
    drop(heap);
    Ok(vec![Row {
        id: "W5b",
        measured: "W5 with 1 GiB touched heap, ms".into(),
        met: Some(ours.median() <= 1.0),
        ours,
        baseline: Some(("raw fork", baseline)),
        target: "≤ 1 ms (fork server)",
    }])
}
