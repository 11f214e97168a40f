//! Helpers shared by the behaviour tests in `tests/tests/`.
//!
//! Counting open files and child processes is only meaningful while nothing else in the process
//! opens files or forks, so the tests that count run in test binaries of their own, one `#[test]`
//! each.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod forge;
pub mod seccomp;

/// The file descriptors this process has open, by number.
///
/// # Panics
///
/// Panics if `/proc/self/fd` cannot be read.
#[must_use]
pub fn open_fds() -> Vec<u32> {
    let mut fds: Vec<u32> = fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    // The list includes the descriptor `read_dir` held while listing, so two calls compare equal
    // exactly when nothing else was opened or closed between them.
    fds
}

/// The processes whose parent is this process, zombies included, by pid.
///
/// # Panics
///
/// Panics if `/proc` cannot be read.
#[must_use]
pub fn children() -> Vec<u32> {
    children_of(std::process::id())
}

/// The processes whose parent is `me`, zombies included, by pid.
///
/// # Panics
///
/// Panics if `/proc` cannot be read.
#[must_use]
pub fn children_of(me: u32) -> Vec<u32> {
    let mut children: Vec<u32> = fs::read_dir("/proc")
        .expect("/proc is readable")
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name, in parentheses, may itself hold spaces and parentheses: the
            // fields after the last `)` are `state ppid …`.
            let parent: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (parent == me).then_some(pid)
        })
        .collect();
    children.sort_unstable();
    children
}

/// Whether process `pid` has ended (it is gone, or a zombie), waiting for at most `limit`.
///
/// For a process that something else reaps (a reaper thread, the fork server, init): the limit
/// bounds how long a test that fails takes, and is far above how long the reaping takes.
#[must_use]
pub fn ended_within(pid: u32, limit: Duration) -> bool {
    gone_within(pid, limit, true)
}

/// Whether process `pid` is gone, zombies included (it has been reaped), waiting for at most
/// `limit`.
#[must_use]
pub fn reaped_within(pid: u32, limit: Duration) -> bool {
    gone_within(pid, limit, false)
}

fn gone_within(pid: u32, limit: Duration, zombie_counts: bool) -> bool {
    let give_up = Instant::now() + limit;
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"));
        let gone = match stat {
            Err(_) => true,
            Ok(stat) => {
                zombie_counts
                    && stat
                        .rsplit_once(')')
                        .is_some_and(|(_, s)| s.starts_with(" Z"))
            }
        };
        if gone {
            return true;
        }
        if Instant::now() >= give_up {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A directory of its own under [`std::env::temp_dir`], removed with its contents when dropped.
///
/// Pool tasks run in other processes: they report what they did (started, finished, their pid)
/// by creating files here, which the test then reads. The directory honours `TMPDIR`, as the
/// Lambda sandbox of the CI run needs, and its name holds the test process's pid, so that runs
/// side by side never share one.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory whose name starts with `label`.
    ///
    /// # Panics
    ///
    /// Panics if the directory cannot be created.
    #[must_use]
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("lambda-parallel-{label}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        fs::create_dir(&path).expect("the temporary directory is writable");
        TempDir { path }
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names of the files in the directory, sorted.
    ///
    /// # Panics
    ///
    /// Panics if the directory cannot be read.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.path)
            .expect("the temporary directory is readable")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        names.sort_unstable();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Creates the empty file `name` in `dir`: a marker that something happened, visible to every
/// process.
///
/// # Panics
///
/// Panics if the file cannot be created.
pub fn mark(dir: &Path, name: &str) {
    fs::write(dir.join(name), b"").expect("the marker can be created");
}

/// Waits until the file `name` exists in `dir`, for at most `limit`; whether it does.
///
/// For a task that must wait for another process to reach a point (a barrier between workers):
/// the limit only bounds how long a broken pool makes a test take before it fails.
#[must_use]
pub fn wait_for(dir: &Path, name: &str, limit: Duration) -> bool {
    let path = dir.join(name);
    let give_up = Instant::now() + limit;
    while !path.exists() {
        if Instant::now() >= give_up {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// `len` bytes in a pattern that a shifted, truncated or reordered copy would not match, for
/// checking large values that crossed a pipe. Different seeds give different patterns.
#[must_use]
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let [low, ..] = i.to_le_bytes();
            let [high, ..] = (i >> 13).to_le_bytes();
            low.wrapping_mul(31).wrapping_add(seed) ^ high
        })
        .collect()
}

/// A result that the codec cannot encode: the `Serialize` of its flattened map fails, as a
/// `PathBuf` that is not UTF-8 or a `#[serde(skip)]` variant would.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Flattened {
    /// A field of its own.
    pub id: u32,
    /// Fields flattened into the struct's own map.
    #[serde(flatten, serialize_with = "refuse")]
    pub extra: std::collections::BTreeMap<String, u32>,
}

/// A result that the codec can encode but not decode: each variant of the untagged enum refuses
/// what is written back, so none matches.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Untagged {
    /// A number.
    Number(#[serde(deserialize_with = "refuse_to_read")] u32),
    /// A text.
    Text(#[serde(deserialize_with = "refuse_to_read")] String),
}

fn refuse<T, S: serde::Serializer>(_: &T, _: S) -> Result<S::Ok, S::Error> {
    Err(serde::ser::Error::custom(
        "this value refuses to be encoded",
    ))
}

fn refuse_to_read<'de, T, D: serde::Deserializer<'de>>(_: D) -> Result<T, D::Error> {
    Err(serde::de::Error::custom("this value refuses to be decoded"))
}

/// For test binaries with a `main` of their own (`harness = false`), which must call
/// `lambda_parallel::init` before any thread exists: their checks, run in order and reported
/// as the test harness would.
pub mod checks {
    use std::fs::{self, File};
    use std::io::{self, Write};
    use std::os::fd::AsFd;
    use std::time::Duration;

    use crate::TempDir;

    /// A named check: `Err` says why it failed.
    pub type Check = (&'static str, fn() -> Result<(), String>);

    /// `Ok` if `condition` holds, else `why`.
    ///
    /// # Errors
    ///
    /// `why`, when `condition` does not hold.
    pub fn expect(condition: bool, why: impl Into<String>) -> Result<(), String> {
        condition.then_some(()).ok_or_else(|| why.into())
    }

    /// Ends the process with a message if it still runs after `limit`: a hang then fails the
    /// binary rather than stalling CI.
    pub fn watchdog(binary: &'static str, limit: Duration) {
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            eprintln!("{binary}: hung for {} s", limit.as_secs());
            std::process::exit(2);
        });
    }

    /// Whether each check that passed is listed: with `--list-passed` or
    /// `LAMBDA_PARALLEL_TESTS_VERBOSE=1`. Cargo passes no `--quiet` to a binary without the test
    /// harness, so these binaries are terse by default (failures, then the counts), which keeps
    /// `cargo test`'s output a screenful.
    fn verbose() -> bool {
        std::env::args().skip(1).any(|arg| arg == "--list-passed")
            || std::env::var_os("LAMBDA_PARALLEL_TESTS_VERBOSE").is_some_and(|v| v == "1")
    }

    /// Prints each failure to stdout as `test NAME ... FAILED: why` (and each pass as
    /// `test NAME ... ok`, when asked to list passes), then `BINARY: N passed, N failed`, and exits,
    /// non-zero if any failed.
    pub fn report(
        binary: &str,
        outcomes: impl IntoIterator<Item = (&'static str, Result<(), String>)>,
    ) -> ! {
        report_to(&mut io::stdout(), binary, outcomes)
    }

    /// [`report`], to `out`: for a binary whose stdout is a [`CapturedStdout`], its
    /// [`terminal`](CapturedStdout::terminal).
    pub fn report_to(
        out: &mut impl Write,
        binary: &str,
        outcomes: impl IntoIterator<Item = (&'static str, Result<(), String>)>,
    ) -> ! {
        let (mut passed, mut failed) = (0, 0);
        let verbose = verbose();
        // A line that cannot be written has nowhere else to go; the exit status still says.
        for (name, outcome) in outcomes {
            match outcome {
                Ok(()) => {
                    passed += 1;
                    if verbose {
                        let _ = writeln!(out, "test {name} ... ok");
                    }
                }
                Err(why) => {
                    failed += 1;
                    let _ = writeln!(out, "test {name} ... FAILED: {why}");
                }
            }
        }
        let _ = writeln!(out, "{binary}: {passed} passed, {failed} failed");
        let _ = out.flush();
        std::process::exit(i32::from(failed > 0));
    }

    /// The environment variable that tells a binary run by [`in_modes`] which mode it runs in.
    pub const MODE: &str = "LAMBDA_PARALLEL_TEST_MODE";

    /// The mode this binary was started in by [`in_modes`], if any.
    #[must_use]
    pub fn mode() -> Option<String> {
        std::env::var(MODE).ok()
    }

    /// Runs this binary once more for each of `modes` (with [`MODE`] set), one after another,
    /// each in a process of its own, and exits, non-zero if any run failed. For setups that a
    /// process cannot undo (a seccomp filter, `init`) and that each run needs fresh.
    ///
    /// # Panics
    ///
    /// Panics if the binary cannot be run.
    pub fn in_modes(binary: &str, modes: &[&str]) -> ! {
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let mut failed = Vec::new();
        for mode in modes {
            let status = std::process::Command::new(&exe)
                .args(std::env::args_os().skip(1))
                .env(MODE, mode)
                .env("LAMBDA_PARALLEL_NO_THREAD_WARNING", "1")
                .status()
                .expect("the test binary runs again");
            if !status.success() {
                failed.push(format!("{mode} ({status})"));
            }
        }
        if !failed.is_empty() {
            println!("{binary}: failed in mode {}", failed.join(", "));
            std::process::exit(1);
        }
        std::process::exit(0);
    }

    /// Runs `checks` in order and [`report`]s them.
    pub fn run(binary: &str, checks: &[Check]) -> ! {
        report(binary, checks.iter().map(|(name, check)| (*name, check())));
    }

    /// This process's stdout (descriptor 1) redirected into a temporary file, so that what the
    /// binary's workers print can be counted instead of scrolling past the test run.
    ///
    /// A worker writes to descriptor 1 itself, which no test harness captures. Started before
    /// `lambda_parallel::init`, the capture holds for the fork server and every worker it forks,
    /// which inherit the descriptor there.
    #[derive(Debug)]
    pub struct CapturedStdout {
        dir: TempDir,
        terminal: File,
    }

    impl CapturedStdout {
        /// Redirects stdout into a fresh file.
        ///
        /// # Panics
        ///
        /// Panics if the file cannot be created or stdout cannot be duplicated or redirected.
        #[must_use]
        pub fn start() -> CapturedStdout {
            let dir = TempDir::new("stdout");
            let file = File::create(dir.path().join("stdout")).expect("the capture file opens");
            let stdout = io::stdout();
            let terminal = stdout
                .as_fd()
                .try_clone_to_owned()
                .expect("stdout can be duplicated");
            stdout.lock().flush().expect("stdout can be flushed");
            nix::unistd::dup2_stdout(&file).expect("stdout can be redirected");
            CapturedStdout {
                dir,
                terminal: File::from(terminal),
            }
        }

        /// The stdout that the process started with: for the lines meant for whoever runs it.
        #[must_use]
        pub fn terminal(&self) -> &File {
            &self.terminal
        }

        /// Puts this process's stdout back, and returns everything written to the capture so
        /// far, by this process and by its workers.
        ///
        /// # Panics
        ///
        /// Panics if stdout cannot be flushed or restored, or the capture cannot be read.
        #[must_use]
        pub fn finish(self) -> String {
            io::stdout().lock().flush().expect("stdout can be flushed");
            nix::unistd::dup2_stdout(&self.terminal).expect("stdout can be restored");
            fs::read_to_string(self.dir.path().join("stdout")).expect("the capture is readable")
        }
    }
}
