//! One worker process as the engine sees it: what it holds, and reading, writing and ending it.

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsFd;
use std::time::Instant;

use super::job::{deliver, Batch, Job, JobId, Outcome};
use super::outbox::Outbox;
use crate::error::ErrorKind;
use crate::frame::{Fill, FrameReader};
use crate::outcome;
use crate::process::PoolProcess;

/// One live worker process and what it is doing.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) process: PoolProcess,
    pub(super) reader: FrameReader,
    /// Which of `batches` are not yet wholly written to the worker's pipe.
    pub(super) out: Outbox,
    /// Batches sent to this worker, oldest first; outcomes arrive in this order.
    pub(super) batches: VecDeque<Batch>,
    /// Outcomes received for the oldest batch.
    pub(super) done: usize,
    /// When the task the worker runs now started (roughly: when the outcome before it arrived).
    pub(super) started: Instant,
    /// Tasks given to this worker over its life, for recycling.
    pub(super) assigned: usize,
}

impl Slot {
    pub(super) fn idle(&self) -> bool {
        self.batches.is_empty()
    }
}

/// The worker a task ran on died: why, as the task's error.
pub(super) fn crash(slot: &mut Slot) -> ErrorKind {
    match slot.process.child.reap() {
        Ok(exit) => {
            let partial = (!slot.reader.is_empty()).then(|| slot.reader.incomplete().to_string());
            outcome::missing(exit, partial)
        }
        Err(err) => ErrorKind::Io(err),
    }
}

/// Kills a worker (one that ran a task for too long, or is no longer wanted); `kind` is the
/// error of the task it was running.
pub(super) fn stuck(slot: &mut Slot, kind: ErrorKind) -> ErrorKind {
    let _ = slot.process.child.kill();
    let _ = slot.process.child.reap();
    kind
}

/// Reads what a worker has sent and delivers each whole outcome frame to its task. Fails when
/// the bytes are not frames, or a frame comes that no task waits for.
pub(super) fn read(slot: &mut Slot, jobs: &mut HashMap<JobId, Job>) -> Result<(), String> {
    let mut drained = false;
    loop {
        let done_before = (slot.batches.len(), slot.done);
        loop {
            let (tag, payload) = match slot.reader.frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => return Err(err.to_string()),
            };
            let Some(batch) = slot.batches.front() else {
                return Err("an outcome arrived for no task".into());
            };
            let (job, index, count) = (batch.job, batch.first + slot.done, batch.count);
            deliver(jobs, job, index, Outcome::Frame(tag, payload.to_vec()));
            slot.reader.consume();
            slot.done += 1;
            if slot.done == count {
                slot.batches.pop_front();
                slot.done = 0;
            }
        }
        if (slot.batches.len(), slot.done) != done_before {
            // The next task started when the last outcome was written: as far as the parent
            // can tell, now. Once per read, not once per outcome.
            slot.started = Instant::now();
        }
        if drained {
            return Ok(());
        }
        match slot.reader.fill(slot.process.results.as_fd()) {
            Ok(Fill::Data) => {}
            Ok(Fill::Drained) => {
                // Deliver what came; `poll` says when more does.
                drained = true;
            }
            // EOF comes with the pidfd's news of the worker's end, which buries it.
            Ok(Fill::WouldBlock | Fill::Eof) => return Ok(()),
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// Writes what the pipe takes of a worker's pending requests, without blocking.
pub(super) fn write(slot: &mut Slot) {
    slot.out.write(slot.process.requests.as_fd(), &slot.batches);
}
