//! The soak: pools of 2–8 workers, shared by several threads at once, run random mixes of every
//! way a task can end (a value, a typed `Err`, a panic, an abort, SIGSEGV, a SIGKILL of its own,
//! an exit, a timeout, forged and partial frames, 16 MiB both ways), beside one-off workers, with
//! and without the fork server, which is killed now and then (issue #11). It checks that every
//! task has exactly one outcome, of the kind its fault calls for, and that each run of it ends
//! with no zombie, no descriptor more than it began with, and bounded memory.
//!
//! `LAMBDA_PARALLEL_SOAK_SECS` sets how long (60 s by default), `LAMBDA_PARALLEL_SOAK_SEED`
//! the seed (printed, from the clock by default). The time is cut into epochs of at most 10 s,
//! each in a process of its own (the binary runs itself again): `init` must come before any
//! thread, and a killed fork server stays dead for the rest of its process.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lambda_parallel::{lambda_parallel, Error, Kind, Pool};
use lambda_parallel_tests::checks::{mode, watchdog, MODE};
use lambda_parallel_tests::forge::{header, random_bytes, write_raw, VALUE};
use lambda_parallel_tests::{children_of, open_fds, reaped_within};
use nix::sys::signal::{self, SigHandler, Signal};
use serde::{Deserialize, Serialize};

/// A 16 MiB payload.
const BIG: usize = 16 << 20;

/// The task timeout of the pools that have one, and the `join_timeout` of one-off workers.
const TIMEOUT: Duration = Duration::from_secs(3);

/// What the caller's peak memory must stay under: a few 16 MiB payloads in flight on each
/// thread, several times over.
const PEAK_MIB: u64 = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Fault {
    Ok,
    Err,
    Panic,
    Abort,
    Segfault,
    Kill,
    Exit(i32),
    /// Runs past the timeout.
    Sleep,
    /// Writes random bytes to the result pipe, then returns.
    Forged(u64),
    /// Writes four bytes of a frame header, then returns.
    Partial,
    /// Sends its 16 MiB payload back.
    Big,
}

#[derive(Debug, Serialize, Deserialize)]
struct Spec {
    id: u64,
    fault: Fault,
    payload: Vec<u8>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reply {
    id: u64,
    payload: Vec<u8>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct TaskErr {
    id: u64,
}

fn raise(signal: Signal) {
    // The Rust runtime handles SIGSEGV (stack overflows): let the raised one kill.
    // SAFETY: `SIG_DFL` installs no handler code, so no handler can run unsafely.
    unsafe { signal::signal(signal, SigHandler::SigDfl) }.unwrap();
    signal::raise(signal).unwrap();
}

#[lambda_parallel]
fn task(spec: Spec) -> Result<Reply, TaskErr> {
    let id = spec.id;
    match spec.fault {
        Fault::Ok | Fault::Big => {}
        Fault::Err => return Err(TaskErr { id }),
        Fault::Panic => panic!("soak panic {id}"),
        Fault::Abort => std::process::abort(),
        Fault::Segfault => raise(Signal::SIGSEGV),
        Fault::Kill => signal::raise(Signal::SIGKILL).unwrap(),
        Fault::Exit(code) => std::process::exit(code),
        Fault::Sleep => std::thread::sleep(Duration::from_secs(600)),
        Fault::Forged(seed) => write_raw(&random_bytes(seed, 64)),
        Fault::Partial => write_raw(&header(VALUE, 3)[..4]),
    }
    let payload = spec.payload;
    Ok(Reply { id, payload })
}

/// xorshift64*: seeded, small, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// Every count the soak prints, in the order it prints them.
const COUNTS: [&str; 25] = [
    "tasks",
    "ok",
    "err",
    "panic",
    "abort",
    "segfault",
    "kill",
    "exit",
    "sleep",
    "forged",
    "partial",
    "big",
    "server-kills",
    "got-ok",
    "got-err",
    "got-panic",
    "got-signal",
    "got-exit",
    "got-timeout",
    "got-frame",
    "got-frame-next-task",
    "got-server-gone",
    "zombies",
    "leaked-fds",
    "stray-children",
];

/// The counts of one epoch (or all), by name.
#[derive(Default)]
struct Tally(Mutex<HashMap<&'static str, u64>>);

impl Tally {
    fn add(&self, name: &'static str, n: u64) {
        debug_assert!(COUNTS.contains(&name), "{name}");
        *self.0.lock().unwrap().entry(name).or_default() += n;
    }

    fn get(&self, name: &str) -> u64 {
        self.0.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    fn line(&self) -> String {
        COUNTS.iter().fold(String::new(), |mut line, name| {
            let _ = write!(line, " {name}={}", self.get(name));
            line
        })
    }
}

fn fault_name(fault: Fault) -> &'static str {
    match fault {
        Fault::Ok => "ok",
        Fault::Err => "err",
        Fault::Panic => "panic",
        Fault::Abort => "abort",
        Fault::Segfault => "segfault",
        Fault::Kill => "kill",
        Fault::Exit(_) => "exit",
        Fault::Sleep => "sleep",
        Fault::Forged(_) => "forged",
        Fault::Partial => "partial",
        Fault::Big => "big",
    }
}

/// A pool of the epoch, and what its forged frames may cost the tasks after them.
struct SoakPool {
    pool: Pool,
    timeout: bool,
    /// Forged or partial frames whose task still returned its value (through the ring): the
    /// stray bytes then fail the task the worker runs when the pool sees them (at most one, as
    /// the worker is retired), or none.
    forged_ok: AtomicU64,
    /// Tasks that failed with a bad frame they did not forge.
    next_task_frames: AtomicU64,
}

/// What one epoch shares between its threads.
struct Epoch {
    pools: Vec<SoakPool>,
    tally: Tally,
    failures: Mutex<Vec<String>>,
    next_id: AtomicU64,
    server_gone: AtomicBool,
    until: Instant,
}

/// How a task ended, as the soak sorts it.
type Outcome = Result<Result<Reply, TaskErr>, Error>;

impl Epoch {
    fn fail(&self, why: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 20 {
            failures.push(why);
        }
    }

    fn spec(&self, rng: &mut Rng, timeout: bool, big: &mut bool) -> Spec {
        // Out of 100: 40 and what falls through below are values.
        let fault = match rng.range(0, 99) {
            40..=49 => Fault::Err,
            50..=56 => Fault::Panic,
            57..=61 => Fault::Abort,
            62..=66 => Fault::Segfault,
            67..=71 => Fault::Kill,
            72..=77 => Fault::Exit(i32::try_from(rng.range(1, 60)).unwrap()),
            78..=83 => Fault::Forged(rng.next()),
            84..=89 => Fault::Partial,
            90..=92 if !*big => Fault::Big,
            93 if timeout => Fault::Sleep,
            _ => Fault::Ok,
        };
        *big |= fault == Fault::Big;
        let payload = if fault == Fault::Big {
            random_bytes(rng.next(), BIG)
        } else {
            Vec::new()
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.tally.add("tasks", 1);
        self.tally.add(fault_name(fault), 1);
        Spec { id, fault, payload }
    }

    /// Checks one task's outcome against its fault. `pool` is the pool it ran on (`None`: a
    /// one-off worker), `index` its place in the call.
    fn check(&self, spec: &Spec, index: usize, outcome: Outcome, pool: Option<&SoakPool>) {
        let id = spec.id;
        let bad = |what: String| self.fail(format!("task {id} ({:?}): {what}", spec.fault));
        let err = match outcome {
            Ok(Ok(reply)) => {
                self.tally.add("got-ok", 1);
                match spec.fault {
                    Fault::Forged(_) | Fault::Partial if pool.is_some() => {
                        pool.unwrap().forged_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Fault::Ok | Fault::Big => {}
                    _ => return bad(format!("returned a value (id {})", reply.id)),
                }
                if reply.id != id || reply.payload != spec.payload {
                    bad(format!("the reply of task {} came back", reply.id));
                }
                return;
            }
            Ok(Err(TaskErr { id: got })) => {
                self.tally.add("got-err", 1);
                if spec.fault != Fault::Err || got != id {
                    bad(format!("returned the Err of task {got}"));
                }
                return;
            }
            Err(err) => err,
        };
        if pool.is_some() && err.task_index() != Some(index) {
            bad(format!(
                "its error names task {:?}: {err}",
                err.task_index()
            ));
        }
        let kind = err.kind();
        let expected = match spec.fault {
            Fault::Panic => err.panic_message() == Some(&format!("soak panic {id}")),
            Fault::Abort => err.signal() == Some(6) && kind == Kind::Signal,
            Fault::Segfault => err.signal() == Some(11) && kind == Kind::Signal,
            // Its own SIGKILL is no OOM kill.
            Fault::Kill => err.signal() == Some(9) && kind == Kind::Signal,
            Fault::Exit(code) => err.exit_code() == Some(code),
            Fault::Sleep => kind == Kind::Timeout,
            Fault::Forged(_) | Fault::Partial => kind == Kind::Frame,
            Fault::Ok | Fault::Err | Fault::Big => false,
        };
        let name = match kind {
            Kind::Panic => "got-panic",
            Kind::Signal => "got-signal",
            Kind::Exit => "got-exit",
            Kind::Timeout => "got-timeout",
            Kind::Frame if !expected => "got-frame-next-task",
            Kind::Frame => "got-frame",
            Kind::ServerGone => "got-server-gone",
            _ => return bad(format!("unexpected {kind:?}: {err}")),
        };
        self.tally.add(name, 1);
        if expected {
            return;
        }
        match (kind, pool) {
            (Kind::ServerGone, _) if self.server_gone.load(Ordering::SeqCst) => {}
            (Kind::Frame, Some(pool)) => {
                pool.next_task_frames.fetch_add(1, Ordering::Relaxed);
            }
            _ => bad(format!("{err}")),
        }
    }

    /// One thread's rounds until the epoch ends: a random call on a random pool, or a one-off
    /// worker, with random faults.
    fn rounds(&self, seed: u64) {
        let mut rng = Rng(seed | 1);
        while Instant::now() < self.until {
            let which = usize::try_from(rng.range(0, 5)).unwrap();
            if which == 5 || self.pools.is_empty() {
                self.one_off(&mut rng);
                continue;
            }
            let pool = &self.pools[which % self.pools.len()];
            let mut big = false;
            let count = match rng.range(0, 3) {
                0 => 1,
                _ => rng.range(1, 24),
            };
            let specs: Vec<Spec> = (0..count)
                .map(|_| self.spec(&mut rng, pool.timeout, &mut big))
                .collect();
            let outcomes = self.call(&mut rng, &pool.pool, &specs);
            if outcomes.len() != specs.len() {
                self.fail(format!(
                    "{} outcomes of {} tasks",
                    outcomes.len(),
                    specs.len()
                ));
            }
            let mut answered = vec![false; specs.len()];
            for (index, named, outcome) in outcomes {
                match answered.get_mut(index) {
                    Some(answered @ false) => *answered = true,
                    _ => self.fail(format!("a second outcome, or none, for task {index}")),
                }
                if let Some(spec) = specs.get(index) {
                    self.check(spec, named, outcome, Some(pool));
                }
            }
        }
    }

    /// Runs `specs` on `pool` through one of its calls: each outcome with its task's index in
    /// `specs`, and the index its error must name (its index in the call).
    fn call(&self, rng: &mut Rng, pool: &Pool, specs: &[Spec]) -> Vec<(usize, usize, Outcome)> {
        let copy = |spec: &Spec| Spec {
            id: spec.id,
            fault: spec.fault,
            payload: spec.payload.clone(),
        };
        let inputs = specs.iter().map(copy);
        let indexed = |outcomes: Vec<Outcome>| {
            let outcomes = outcomes.into_iter().enumerate();
            outcomes.map(|(i, outcome)| (i, i, outcome)).collect()
        };
        match rng.range(0, 4) {
            0 => indexed(pool.map_each(task, inputs)),
            1 => pool
                .imap_unordered(task, inputs)
                .map(|(i, outcome)| (i, i, outcome))
                .collect(),
            2 => indexed(pool.imap(task, inputs).collect()),
            3 => match pool.map_async(task, inputs) {
                Ok(handle) => indexed(handle.get_each()),
                Err(err) => {
                    self.fail(format!("map_async refused the tasks: {err}"));
                    Vec::new()
                }
            },
            // `apply` is a call of one task: its error names task 0.
            _ => specs
                .iter()
                .enumerate()
                .map(|(i, spec)| (i, 0, pool.apply(task, (copy(spec),))))
                .collect(),
        }
    }

    fn one_off(&self, rng: &mut Rng) {
        let mut big = false;
        let spec = self.spec(rng, true, &mut big);
        let copy = Spec {
            id: spec.id,
            fault: spec.fault,
            payload: spec.payload.clone(),
        };
        let outcome = task::spawn(copy).and_then(|handle| handle.join_timeout(TIMEOUT));
        // A partial frame from a worker that then ends is a bad frame, ring or not.
        self.check(&spec, 0, outcome, None);
    }
}

/// The fork server's pid: this process's one child, right after `init`.
fn server_pid() -> u32 {
    let children = children_of(std::process::id());
    assert_eq!(
        children.len(),
        1,
        "the fork server is the one child: {children:?}"
    );
    children[0]
}

/// The zombies among the children of `parents` that stay so for 5 s: the fork server and the
/// runtime's reaper reap a killed worker off the caller's thread, but promptly.
fn zombies(parents: &[u32]) -> u64 {
    let is_zombie = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, s)| s.starts_with(" Z"))
        })
    };
    let zombies = parents.iter().flat_map(|&parent| children_of(parent));
    let zombies: Vec<u32> = zombies.filter(|&pid| is_zombie(pid)).collect();
    let stay = zombies
        .iter()
        .filter(|&&pid| !reaped_within(pid, Duration::from_secs(5)));
    stay.count() as u64
}

/// A field of `/proc/self/status` in MiB (`VmHWM`: the peak resident memory).
fn status_mib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .unwrap();
    kib.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .unwrap()
        >> 10
}

/// The pools of an epoch: one to three, of 2–8 workers, with or without a task timeout, a
/// chunk size and a limit on each worker's tasks.
fn pools(rng: &mut Rng) -> Vec<SoakPool> {
    (0..rng.range(1, 3))
        .map(|_| {
            let timeout = rng.one_in(2);
            let mut builder = Pool::builder().workers(usize::try_from(rng.range(2, 8)).unwrap());
            builder = builder.chunk_size(usize::try_from(rng.range(1, 4)).unwrap());
            if timeout {
                builder = builder.task_timeout(TIMEOUT);
            }
            if rng.one_in(3) {
                builder = builder.max_tasks_per_worker(usize::try_from(rng.range(1, 50)).unwrap());
            }
            SoakPool {
                pool: builder.build().expect("the pool starts"),
                timeout,
                forged_ok: AtomicU64::new(0),
                next_task_frames: AtomicU64::new(0),
            }
        })
        .collect()
}

/// One epoch, in a process of its own: `served` or `direct`, its seed and its length. Prints
/// its counts on one line, `counts ...`, and its failures, and exits non-zero if any.
fn epoch(mode: &str) -> ! {
    let mut parts = mode.split(':');
    let (how, seed, millis) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let (seed, millis): (u64, u64) = (seed.parse().unwrap(), millis.parse().unwrap());
    let with_server = how == "served";
    if with_server {
        lambda_parallel::init().expect("init runs first thing in main");
    }
    let server = with_server.then(server_pid);
    let fds = open_fds();
    let mut rng = Rng(seed | 1);
    let length = Duration::from_millis(millis);
    watchdog("soak", length + Duration::from_secs(120));
    let pools = pools(&mut rng);
    let epoch = Epoch {
        pools,
        tally: Tally::default(),
        failures: Mutex::new(Vec::new()),
        next_id: AtomicU64::new(0),
        server_gone: AtomicBool::new(false),
        until: Instant::now() + length,
    };
    // Now and then, the fork server dies part-way through (the OOM killer, a stray `kill -9`).
    let kill_at = (with_server && rng.one_in(3)).then(|| {
        length.mul_f64(0.3 + 0.6 * f64::from(u8::try_from(rng.range(0, 100)).unwrap()) / 100.0)
    });
    std::thread::scope(|scope| {
        for _ in 0..rng.range(2, 4) {
            let seed = rng.next();
            let epoch = &epoch;
            scope.spawn(move || epoch.rounds(seed));
        }
        if let (Some(at), Some(server)) = (kill_at, server) {
            let epoch = &epoch;
            scope.spawn(move || {
                std::thread::sleep(at);
                epoch.server_gone.store(true, Ordering::SeqCst);
                let pid = nix::unistd::Pid::from_raw(i32::try_from(server).unwrap());
                signal::kill(pid, Signal::SIGKILL).unwrap();
                epoch.tally.add("server-kills", 1);
            });
        }
    });
    for pool in &epoch.pools {
        let (forged_ok, next) = (
            pool.forged_ok.load(Ordering::Relaxed),
            pool.next_task_frames.load(Ordering::Relaxed),
        );
        if next > forged_ok {
            let forged = format!("after {forged_ok} forged frames that returned");
            epoch.fail(format!("{next} tasks failed with a bad frame, {forged}"));
        }
    }
    let Epoch {
        pools,
        tally,
        failures,
        ..
    } = epoch;
    drop(pools);
    // Every worker of a pool is reaped when it drops; a one-off's when it is joined.
    let me = std::process::id();
    let strays = children_of(me)
        .into_iter()
        .filter(|&pid| Some(pid) != server);
    tally.add("stray-children", strays.count() as u64);
    let parents: Vec<u32> = [me].into_iter().chain(server).collect();
    tally.add("zombies", zombies(&parents));
    let leaked = open_fds()
        .into_iter()
        .filter(|fd| !fds.contains(fd))
        .count();
    tally.add("leaked-fds", leaked as u64);
    let mut failures = failures.into_inner().unwrap();
    let peak = status_mib("VmHWM:");
    if peak > PEAK_MIB {
        failures.push(format!("the caller's peak memory is {peak} MiB"));
    }
    for count in ["zombies", "leaked-fds", "stray-children"] {
        if tally.get(count) > 0 {
            failures.push(format!("{count}: {}", tally.get(count)));
        }
    }
    println!("counts{} peak-mib={peak}", tally.line());
    for failure in &failures {
        println!("FAILED ({how}, seed {seed}): {failure}");
    }
    std::process::exit(i32::from(!failures.is_empty()));
}

fn main() {
    if let Some(mode) = mode() {
        epoch(&mode);
    }
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let secs = env("LAMBDA_PARALLEL_SOAK_SECS").unwrap_or(60);
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let seed = env("LAMBDA_PARALLEL_SOAK_SEED").unwrap_or_else(|| clock.unwrap().as_secs());
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let mut rng = Rng(seed | 1);
    let (total, mut peak, mut epochs, mut failed) = (Tally::default(), 0, 0, false);
    while let Some(left) = until
        .checked_duration_since(Instant::now())
        .filter(|left| *left >= Duration::from_secs(1))
    {
        let length = left.min(Duration::from_secs(10));
        let how = if epochs % 2 == 0 { "served" } else { "direct" };
        let mode = format!("{how}:{}:{}", rng.next(), length.as_millis());
        let run = std::process::Command::new(&exe)
            .env(MODE, &mode)
            .env("LAMBDA_PARALLEL_NO_THREAD_WARNING", "1")
            .output()
            .expect("the test binary runs again");
        epochs += 1;
        let stdout = String::from_utf8_lossy(&run.stdout);
        for line in stdout.lines() {
            if let Some(counts) = line.strip_prefix("counts ") {
                for pair in counts.split(' ') {
                    let (name, n) = pair.split_once('=').unwrap();
                    let n: u64 = n.parse().unwrap();
                    match COUNTS.iter().find(|count| **count == name) {
                        Some(name) => total.add(name, n),
                        None => peak = peak.max(n),
                    }
                }
            } else {
                println!("{line}");
            }
        }
        if !run.status.success() {
            failed = true;
            println!(
                "soak: the epoch {mode} failed ({}); stderr: {}",
                run.status,
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
    let count = |name| total.get(name);
    println!(
        "soak: seed {seed}, {} s, {epochs} epochs (LAMBDA_PARALLEL_SOAK_SEED, _SECS)",
        started.elapsed().as_secs()
    );
    println!("soak: {} tasks; faults: ok {} err {} panic {} abort {} segfault {} kill {} exit {} timeout {} forged {} partial {} 16MiB {} server-kills {}",
        count("tasks"), count("ok"), count("err"), count("panic"), count("abort"), count("segfault"), count("kill"), count("exit"), count("sleep"), count("forged"), count("partial"), count("big"), count("server-kills"));
    println!("soak: outcomes: ok {} err {} panic {} signal {} exit {} timeout {} bad-frame {} (and {} on the task after a forged one) server-gone {}",
        count("got-ok"), count("got-err"), count("got-panic"), count("got-signal"), count("got-exit"), count("got-timeout"), count("got-frame"), count("got-frame-next-task"), count("got-server-gone"));
    println!(
        "soak: zombies {}, leaked fds {}, stray children {}, caller peak RSS {peak} MiB",
        count("zombies"),
        count("leaked-fds"),
        count("stray-children")
    );
    std::process::exit(i32::from(failed));
}
