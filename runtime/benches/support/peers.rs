//! The peers: Python's `multiprocessing.Pool` and `lambda_multiprocessing.Pool` 1.1 on W1–W4 and W7,
//! run by `benches/peers/peers.py` in a virtual environment that this module creates under
//! `target/` on first use, and their rows of the table, next to ours.
//!
//! Nothing here fails the benchmark: without `python3` the peers are skipped, and without the
//! virtual environment (offline, or `target/` read-only and no writable temporary directory)
//! `multiprocessing` runs on the system's Python alone; each says so in a note under the table.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::support::report::{Figure, Row};
use crate::Config;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/peers.py");
const PACKAGE: &str = "lambda-multiprocessing==1.1";
/// The workloads the peer script runs.
const WORKLOADS: [&str; 6] = ["W1", "W1b", "W2", "W3", "W4", "W7"];
/// The peers, in the order of their rows.
const PEERS: [&str; 2] = ["multiprocessing", "lambda_multiprocessing"];

/// One line of the peer script's output.
#[derive(Deserialize)]
struct Record {
    peer: Option<String>,
    workload: Option<String>,
    tasks: Option<u64>,
    #[serde(default)]
    samples: Vec<f64>,
    error: Option<String>,
    detail: Option<String>,
    python: Option<String>,
    lambda_multiprocessing: Option<String>,
}

/// What the peers measured, and what the table's reader should know about it.
#[derive(Default)]
pub(crate) struct Peers {
    /// Peer, workload, tasks per sample where the script says, and the figure.
    figures: Vec<(&'static str, String, Option<u64>, Figure)>,
    /// Python's serial time of W3, which the peers' W3 speedups are over.
    serial_w3: Option<Figure>,
    /// Peer, what it raised, and the workloads it raised it in.
    failures: Vec<(&'static str, String, Vec<String>)>,
    notes: Vec<String>,
}

impl Peers {
    /// Runs the peer script on the workloads `config` wants, setting up its interpreter first.
    pub(crate) fn run(config: &Config) -> Peers {
        let mut peers = Peers::default();
        let workloads: Vec<&str> = WORKLOADS
            .into_iter()
            .filter(|id| config.wants(id))
            .collect();
        if workloads.is_empty() || !config.peers {
            return peers;
        }
        if let Err(why) = run_quietly(Command::new("python3").arg("--version")) {
            peers
                .notes
                .push(format!("peers skipped: no python3 ({why})"));
            return peers;
        }
        let python = venv().unwrap_or_else(|why| {
            peers.notes.push(format!(
                "peers: lambda_multiprocessing skipped, multiprocessing run by the system's \
                 python3: {why}"
            ));
            PathBuf::from("python3")
        });
        eprintln!("running the peers ({})…", python.display());
        let mut command = Command::new(&python);
        command.arg(SCRIPT).args(&workloads);
        if config.quick {
            command.arg("--quick");
        }
        if let Err(why) = peers.read(&mut command) {
            peers.notes.push(format!("peers: {why}"));
        }
        peers
    }

    /// Runs the script and keeps every record it printed, up to whatever stopped it.
    fn read(&mut self, command: &mut Command) -> Result<(), String> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot run {SCRIPT}: {err}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|err| err.to_string())?;
            match serde_json::from_str::<Record>(&line) {
                Ok(record) => self.keep(record),
                Err(err) => self
                    .notes
                    .push(format!("peers: unread line {line:?}: {err}")),
            }
        }
        let status = child.wait().map_err(|err| err.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the peer script ended with {status}"))
        }
    }

    fn keep(&mut self, record: Record) {
        if let Some(python) = record.python {
            let peers = match record.lambda_multiprocessing {
                Some(version) => format!("multiprocessing and lambda_multiprocessing {version}"),
                None => "multiprocessing".to_owned(),
            };
            self.notes.push(format!(
                "peers: Python {python}, {peers}, 2 processes each (benches/peers/peers.py)"
            ));
            return;
        }
        let (Some(peer), Some(workload)) = (record.peer, record.workload) else {
            return;
        };
        if peer == "serial" {
            self.serial_w3 = Some(Figure::from_samples(record.samples));
            return;
        }
        let Some(peer) = PEERS.into_iter().find(|name| *name == peer) else {
            return;
        };
        let figure = match record.error.as_deref() {
            // Said once, in the note on the interpreter, rather than on every row.
            Some("not installed") => return,
            Some(error) => {
                let detail = record.detail.unwrap_or_else(|| error.to_owned());
                match self
                    .failures
                    .iter_mut()
                    .find(|(name, said, _)| *name == peer && *said == detail)
                {
                    Some((_, _, workloads)) => workloads.push(workload.clone()),
                    None => self.failures.push((peer, detail, vec![workload.clone()])),
                }
                Figure::failed(error)
            }
            None => Figure::from_samples(record.samples),
        };
        self.figures.push((peer, workload, record.tasks, figure));
    }

    /// What the table's reader should know: what was left out, and why a peer failed.
    pub(crate) fn notes(&self) -> Vec<String> {
        let failures = self.failures.iter().map(|(peer, detail, workloads)| {
            format!("peers: {peer} fails {}: {detail}", workloads.join(", "))
        });
        self.notes.iter().cloned().chain(failures).collect()
    }

    /// A row for each peer's figure, next to our figure for the same workload in `ours`.
    pub(crate) fn rows(&self, ours: &[Row]) -> Vec<Row> {
        let mut rows = Vec::new();
        for (peer, workload, tasks, figure) in &self.figures {
            let Some(our) = ours.iter().find(|row| row.id == workload) else {
                continue;
            };
            let thousands = |n: u64| format!("{}k", n / 1000);
            let measured = match (workload.as_str(), tasks) {
                ("W1", Some(tasks)) if *tasks != 100_000 => {
                    format!("{}, peer: {} tasks", our.measured, thousands(*tasks))
                }
                ("W1b", Some(trips)) => {
                    format!("{}, peer: {} trips", our.measured, thousands(*trips))
                }
                ("W3", _) => match &self.serial_w3 {
                    Some(serial) => format!(
                        "200 × PBKDF2 10k via map: speedup (Python serial {:.2} s)",
                        serial.median()
                    ),
                    None => our.measured.clone(),
                },
                _ => our.measured.clone(),
            };
            let mut row = Row {
                id: our.id,
                measured,
                ours: our.ours.clone(),
                baseline: Some((*peer, figure.clone())),
                target: "",
                met: None,
                kept: "",
                held: None,
            };
            // The targets set against a peer (`shared/BENCHMARKS.md`).
            match (workload.as_str(), *peer, tasks) {
                ("W1", "multiprocessing", _) => {
                    row.target = "≥ 8× multiprocessing";
                    row.met = row.ratio().map(|ratio| ratio <= 1.0 / 8.0);
                }
                ("W7", "lambda_multiprocessing", _) => {
                    row.target = "≥ 2× lambda_multiprocessing";
                    row.met = row.ratio().map(|ratio| ratio >= 2.0);
                }
                _ => {}
            }
            rows.push(row);
        }
        rows
    }
}

/// The virtual environment's interpreter, with `lambda_multiprocessing` installed: the one
/// under `target/peers-venv`, made there on first use, or else (`target/` read-only, as in the
/// Lambda sandbox) one in the temporary directory.
fn venv() -> Result<PathBuf, String> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let places = [
        target.join("peers-venv"),
        std::env::temp_dir().join("lambda-parallel-peers-venv"),
    ];
    let mut unwritable = Vec::new();
    for dir in places {
        let python = dir.join("bin").join("python3");
        let imports =
            || run_quietly(Command::new(&python).args(["-c", "import lambda_multiprocessing"]));
        if imports().is_ok() {
            return Ok(python);
        }
        if let Err(why) = run_quietly(Command::new("python3").arg("-m").arg("venv").arg(&dir)) {
            unwritable.push(format!("no venv in {}: {why}", dir.display()));
            continue;
        }
        eprintln!("installing {PACKAGE} into {}…", dir.display());
        // Few retries and a short timeout: offline, this fails in seconds, not minutes. Where
        // pip cannot reach the index, the next place would not either.
        return run_quietly(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--retries",
            "1",
            "--timeout",
            "15",
            PACKAGE,
        ]))
        .and_then(|()| imports())
        .map(|()| python)
        .map_err(|why| format!("pip install {PACKAGE} failed (offline?): {why}"));
    }
    Err(unwritable.join("; "))
}

/// Runs `command` with its output captured; `Err` holds the last line it printed on failure.
fn run_quietly(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| err.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    let last = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let line = text.lines().rfind(|line| !line.trim().is_empty())?;
        Some(line.trim().to_owned())
    };
    let said = last(&output.stderr).or_else(|| last(&output.stdout));
    Err(format!(
        "{} ({})",
        said.as_deref().unwrap_or("no output"),
        output.status
    ))
}
