//! One worker process as the engine sees it: what it holds, and reading, writing and ending it.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::job::{Batch, Jobs, Outcome};
use super::outbox::Outbox;
use crate::error::ErrorKind;
use crate::frame::{Fill, FrameReader, Payload, Tag};
use crate::outcome;
use crate::process::PoolProcess;
use crate::ring::RingReader;

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
    /// Whether the worker's outcomes come on its pipe now, rather than in its ring.
    pub(super) piped: bool,
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

/// Delivers each outcome a worker has sent, from its ring and its pipe, in order. Reads the pipe
/// only when `pipe_ready` (`poll` said so): a read that would find nothing is a wasted system
/// call. Fails when the bytes are not frames, or a frame comes that no task waits for.
pub(super) fn read(slot: &mut Slot, jobs: &mut Jobs, pipe_ready: bool) -> Result<(), String> {
    let mut fill = pipe_ready;
    let done_before = (slot.batches.len(), slot.done);
    if let Some(ring) = &mut slot.process.ring {
        ring.refresh();
    }
    let result = loop {
        match next_outcome(slot) {
            Ok(Some((tag, payload))) => {
                if let Err(err) = deliver_next(slot, jobs, tag, payload) {
                    break Err(err);
                }
                continue;
            }
            Ok(None) => {}
            Err(err) => break Err(err),
        }
        if !fill {
            break Ok(());
        }
        let filled = slot.reader.fill(slot.process.results.as_fd());
        if let Some(ring) = &mut slot.process.ring {
            // What the worker published before writing what was just read: see `next_outcome`.
            ring.refresh();
        }
        match filled {
            Ok(Fill::Data) => {}
            // Deliver what came; `poll` says when more does.
            Ok(Fill::Drained) => fill = false,
            // EOF comes with the pidfd's news of the worker's end, which buries it.
            Ok(Fill::WouldBlock | Fill::Eof) => break Ok(()),
            Err(err) => break Err(err.to_string()),
        }
    };
    if let Some(ring) = &mut slot.process.ring {
        ring.release();
    }
    if (slot.batches.len(), slot.done) != done_before {
        // The next task started when the last outcome was handed over: as far as the parent
        // can tell, now. Once per read, not once per outcome.
        slot.started = Instant::now();
    }
    result
}

/// The next outcome from wherever the worker sends it now (its ring, or its pipe; `ring.rs`),
/// without reading the pipe. Bells are passed over.
fn next_outcome(slot: &mut Slot) -> Result<Option<(Tag, Payload)>, String> {
    loop {
        if !slot.piped {
            if let Some(ring) = &mut slot.process.ring {
                match ring.next().map_err(|err| err.to_string())? {
                    Some((Tag::ToPipe, _)) => slot.piped = true,
                    Some((tag, payload)) if tag.is_outcome() => return Ok(Some((tag, payload))),
                    Some((tag, _)) => return Err(format!("a {tag:?} frame in the ring")),
                    None => {}
                }
            }
        }
        let (tag, payload) = match slot.reader.frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(err) => return Err(err.to_string()),
        };
        let outcome = match tag {
            Tag::Bell => None,
            Tag::ToRing if slot.piped && slot.process.ring.is_some() => {
                slot.piped = false;
                None
            }
            tag if tag.is_outcome() && slot.piped => Some((tag, Payload::copy_of(payload))),
            // In ring mode, the ring was read up to what it held after these bytes came (`read`
            // refreshes it after each fill); a worker publishes its switch to the pipe before
            // it writes there, so the switch would have shown.
            tag => return Err(format!("an unexpected {tag:?} frame on the pipe")),
        };
        slot.reader.consume();
        if outcome.is_some() {
            return Ok(outcome);
        }
    }
}

/// Gives the oldest waiting task its outcome, and the tasks after it in its batch theirs, as far
/// as they have come.
fn deliver_next(
    slot: &mut Slot,
    jobs: &mut Jobs,
    tag: Tag,
    payload: Payload,
) -> Result<(), String> {
    let Some(batch) = slot.batches.front() else {
        return Err("an outcome arrived for no task".into());
    };
    let (first, count) = (batch.first, batch.count);
    // One lookup for the outcomes of this batch that are here, not one each.
    let mut job = jobs.get_mut(&batch.job);
    let mut outcome = Some((tag, payload));
    while let Some((tag, payload)) = outcome.take() {
        if let Some(job) = job.as_deref_mut() {
            job.record(first + slot.done, Outcome::Frame(tag, payload));
        }
        slot.done += 1;
        if slot.done == count {
            slot.batches.pop_front();
            slot.done = 0;
            break;
        }
        outcome = next_outcome(slot)?;
    }
    Ok(())
}

/// Writes what the pipe takes of a worker's pending requests, without blocking.
pub(super) fn write(slot: &mut Slot) {
    if slot.out.write(slot.process.requests.as_fd(), &slot.batches) {
        if let Some(ring) = &slot.process.ring {
            ring.post();
        }
    }
}

/// Spins for at most `limit` until a worker's ring holds an outcome; whether one does.
///
/// Cheaper than sleeping when outcomes come that fast: no bell for the worker to write, no
/// wake-up for the pool. The engine does it only while waits have lately been that short.
pub(super) fn linger(slots: &mut [Slot], limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        for slot in &mut *slots {
            if slot.process.ring.as_mut().is_some_and(RingReader::pending) {
                return true;
            }
        }
        if Instant::now() >= until {
            return false;
        }
        std::hint::spin_loop();
    }
}
