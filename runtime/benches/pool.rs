//! The performance bar of `shared/BENCHMARKS.md`: every workload, side by side with its
//! baselines, in one run, printed as one table.
//!
//! ```text
//! cargo bench --bench pool                  # everything, about a minute on 2 cores
//! cargo bench --bench pool -- --quick       # fewer repetitions: a smoke run (CI)
//! cargo bench --bench pool -- W2 W5b       # only the workloads named
//! cargo bench --bench pool -- --no-peers   # without the Python peers
//! cargo bench --bench pool --features bincode -- W8   # the two codecs (W8 needs the feature)
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
//! | W1 (imap) | the same 100,000 tasks streamed through [`Pool::imap`], default batching, ns per task | `map`: W1's own figure |
//! | W1b | 10,000 sequential [`Pool::apply`] round trips, µs each | `raw pipe`: a pre-forked child echoing 8 bytes over two pipes |
//! | W2 | 64 × 1 MiB `echo(Vec<u8>)` through `map` on 2 workers, MiB/s (128 MiB moved) | `raw pipe`: 64 × 1 MiB echoed by a pre-forked child over two 1 MiB pipes, one in flight |
//! | W3 | PBKDF2-HMAC-SHA256, 10,000 iterations, of 200 passwords through `map` on 2 workers: speedup over `serial` | `threads`: the speedup of rayon on 2 threads |
//! | W4 | build a 2-worker pool, run one task, drop it (children killed and reaped), ms | `raw fork×2`: fork two echo children, one round trip, kill and reap both |
//! | W5 | one-off `spawn(..).join()` of a trivial `#[lambda_parallel]` fn, µs | `raw fork`: pipe, fork, the child writes 8 bytes, read, `waitpid` |
//! | W5b | W5 while the parent has 1 GiB of touched heap, ms | `raw fork` from that parent |
//! | W6 | USS (private memory) of each idle worker of a fresh 2-worker pool, MiB; the parent's peak RSS during W2, MiB | a raw forked child's USS; the 64 MiB of task data in flight |
//! | W7 | an `SqsEvent` of 1,000 records with 1 KiB JSON bodies, each parsed and its password hashed (PBKDF2, 1,000 rounds), through `lambda::BatchProcessor` on 2 workers, records/s; needs `--features lambda` (else its rows say so) | `serial` and `threads` (rayon, 2): the same parse and hash, and the response |
//! | W8 | W1 and W2 in the default codec (a plain fn) and in `codec = bincode` (`f::TASK`), interleaved on one pool; needs `--features bincode` (else its rows say so) | the same workload in bincode |
//!
//! Peers, after our workloads, when `python3` is present: `benches/peers/peers.py` runs W1–W4
//! on Python's `multiprocessing.Pool` and on `lambda_multiprocessing.Pool` 1.1 (in a virtual
//! environment made under `target/peers-venv` on first use, `pip install
//! lambda-multiprocessing==1.1`), and each of their figures gets a row against ours. Their W1
//! and W1b are smaller for `lambda_multiprocessing` (about 200 µs a task), amortised alike; the
//! row says how many. A peer that cannot run (`multiprocessing` without `/dev/shm`, in the
//! Lambda sandbox) has `fails: why` in place of its figure; without `python3`, or without the
//! virtual environment (offline), a note under the table says what was left out.
//!
//! W6's parent peak is `VmHWM`, reset just before W2's call with `/proc/self/clear_refs`, so
//! it is the peak of that call alone (with its 64 MiB of inputs); where the reset is refused,
//! it runs once, and the row says that it is the peak of the whole process so far.

#![allow(
    clippy::cast_precision_loss,
    reason = "figures are counts and durations far below 2^52, printed to three digits"
)]

mod support;
mod workloads;

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use crate::support::peers::Peers;
use crate::support::report::{self, Row};
use crate::workloads::{batch, codec, cpu, large, processes, tiny};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// A workload: its rows of the table.
type Workload = fn(&Config) -> Result<Vec<Row>>;

/// How the benchmark was asked to run.
struct Config {
    quick: bool,
    /// Whether workers fork from the fork server ([`lambda_parallel::init`]), as the crate
    /// documentation asks a Lambda function to do, or straight from this process.
    fork_server: bool,
    /// Whether the Python peers run too.
    peers: bool,
    filters: Vec<String>,
}

impl Config {
    fn from_args() -> Config {
        let mut bench = false;
        let mut quick = std::env::var_os("BENCH_QUICK").is_some_and(|value| value != "0");
        let mut fork_server = true;
        let mut peers = true;
        let mut filters = Vec::new();
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--bench" => bench = true,
                "--quick" => quick = true,
                "--no-init" => fork_server = false,
                "--no-peers" => peers = false,
                flag if flag.starts_with('-') => {}
                filter => filters.push(filter.to_ascii_lowercase()),
            }
        }
        Config {
            quick: quick || !bench,
            fork_server,
            peers,
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
    let workloads: [(&str, Workload); 10] = [
        ("W4", processes::w4_pool_lifetime),
        ("W5", processes::w5_spawn),
        ("W6", large::w6_memory),
        ("W1b", tiny::w1b_round_trip),
        ("W2", large::w2_throughput),
        ("W1", tiny::w1_map),
        ("W8", codec::w8_codecs),
        ("W7", batch::w7_lambda_batch),
        ("W3", cpu::w3_pbkdf2),
        ("W5b", processes::w5b_spawn_big_parent),
    ];
    for (id, workload) in workloads {
        if config.wants(id) {
            eprintln!("running {id}…");
            rows.extend(workload(&config)?);
            give_back_freed_memory();
        }
    }
    // The peers last, in processes of their own, so that they slow none of ours.
    let peers = Peers::run(&config);
    let peer_rows = peers.rows(&rows);
    rows.extend(peer_rows);
    // Table order: by id (W1, W1b, W2, …); a workload's rows keep their order, ours first.
    rows.sort_by_key(|row| row.id);
    println!();
    report::print_table(&rows);
    for note in peers.notes() {
        println!("{note}");
    }
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
