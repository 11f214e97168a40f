//! A pool worker's outcome channel, both its ends: the worker's [`Sender`] and the pool's
//! [`Receiver`]. Outcomes go through the shared-memory ring (`ring.rs`) where they can, and
//! through the result pipe otherwise; the pipe also carries the signals that keep the two ends
//! in step. Every tag the channel carries is an [`Up`].
//!
//! The pipe carries three things besides outcomes that take it:
//! - a *bell*: before the pool sleeps in `poll`, it raises the ring's `sleeping` flag, saying
//!   which frame should ring ([`Wake`]: the next, or the last of a batch); a worker that
//!   publishes that frame and finds the flag raised lowers it and writes [`Up::Bell`] on the
//!   pipe, so there is at most one bell per sleep, and none while the pool is busy reading;
//! - frames larger than the ring: the worker publishes [`Up::ToPipe`] in the ring and sends what
//!   follows on the pipe, until a frame fits again, when it sends [`Up::ToRing`] on the pipe;
//! - everything from a worker whose ring could not be mapped: every worker starts on the pipe,
//!   and one without a ring stays there, telling nobody.
//!
//! The pool reads the ring up to what it held after each read of the pipe, and a worker
//! publishes its switch to the pipe before it writes there, so the order of outcomes is kept
//! across switches.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::ring::{RingReader, RingWriter, Wake};
use crate::sys;
use crate::wire::frame::{self, Fill, FrameError, FrameReader, Payload, Tag};
use crate::wire::outcome::Status;

/// The tag of a frame on a pool worker's channel: an outcome, or a signal of the protocol above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Up {
    /// A task's outcome.
    Outcome(Status),
    /// On the pipe: the worker published an outcome in its ring while the pool slept. Carries
    /// nothing.
    Bell,
    /// In the ring: the outcomes that follow come on the pipe.
    ToPipe,
    /// On the pipe: the outcomes that follow come in the ring.
    ToRing,
}

impl Tag for Up {
    fn from_bytes(tag: u8, codec: u8) -> Result<Up, FrameError> {
        let signal = match tag {
            32 => Up::Bell,
            33 => Up::ToPipe,
            34 => Up::ToRing,
            _ => return Status::from_bytes(tag, codec).map(Up::Outcome),
        };
        frame::uncoded(tag, codec, Some(signal))
    }

    fn to_bytes(self) -> (u8, u8) {
        match self {
            Up::Outcome(status) => status.to_bytes(),
            Up::Bell => (32, 0),
            Up::ToPipe => (33, 0),
            Up::ToRing => (34, 0),
        }
    }
}

/// Where a batch's outcome frames go, one at a time.
pub(crate) trait Sink {
    /// Hands over one whole outcome frame. When this returns, the frame is the parent's even if
    /// the worker dies at once.
    fn outcome(&mut self, frame: &[u8]) -> io::Result<()>;

    /// A buffer to encode a batch's outcome frames into, handed back with
    /// [`keep`](Sink::keep) after the batch. A worker keeps one from batch to batch: a large
    /// outcome then lands in pages already mapped, rather than in fresh ones that fault one by
    /// one (and go back to the system when freed, to fault again for the next).
    fn buffer(&mut self) -> Vec<u8> {
        Vec::new()
    }

    /// Takes back the buffer that [`buffer`](Sink::buffer) lent.
    fn keep(&mut self, buffer: Vec<u8>) {
        drop(buffer);
    }

    /// Says that the batch whose outcomes went out is done, the worker about to read its next.
    fn batch_done(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Collects the frames, for a pool that runs tasks in the caller's thread.
impl Sink for Vec<u8> {
    fn outcome(&mut self, frame: &[u8]) -> io::Result<()> {
        self.extend_from_slice(frame);
        Ok(())
    }
}

/// The largest outcome buffer a worker keeps for its next batch: enough for large values, and
/// little to hold on to.
const KEPT_BUFFER: usize = 8 << 20;

/// How long a worker waits for room in its ring before it checks that its pool still exists.
const PATIENCE: Duration = Duration::from_millis(100);

/// The worker's end: its ring while outcomes fit, else its pipe.
pub(crate) struct Sender<'a> {
    pipe: File,
    ring: Option<RingWriter>,
    /// Whether outcomes go to the pipe now. Every worker starts there, so that one whose ring
    /// could not be mapped needs to tell nobody.
    piped: bool,
    /// The request pipe, whose hang-up says that the pool is gone.
    requests: BorrowedFd<'a>,
    /// The buffer that outcomes are encoded into, kept from batch to batch.
    buffer: Vec<u8>,
}

impl<'a> Sender<'a> {
    /// The sending end over the result pipe `pipe` and, if it can be mapped, the ring in `ring`.
    pub(crate) fn new(pipe: OwnedFd, ring: Option<OwnedFd>, requests: BorrowedFd<'a>) -> Self {
        Sender {
            pipe: File::from(pipe),
            // Unmapped, the pool still reads the pipe, where every worker starts.
            ring: ring.and_then(|fd| RingWriter::map(&fd).ok()),
            piped: true,
            requests,
            buffer: Vec::new(),
        }
    }

    /// The ring, if the worker has one: for watching the pool's `posted` count.
    pub(crate) fn ring(&self) -> Option<&RingWriter> {
        self.ring.as_ref()
    }
}

impl Sink for Sender<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }

    fn keep(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() <= KEPT_BUFFER {
            self.buffer = buffer;
        }
    }

    fn outcome(&mut self, frame: &[u8]) -> io::Result<()> {
        let Some(ring) = &mut self.ring else {
            return self.pipe.write_all(frame);
        };
        if !RingWriter::could_fit(frame.len()) {
            if !self.piped {
                // `fits` left room for this header after the last frame.
                ring.push(&frame::empty(Up::ToPipe));
                self.piped = true;
            }
            return self.pipe.write_all(frame);
        }
        while !ring.fits(frame.len()) {
            // The pool has fallen behind: wait for it, as a full pipe would make us.
            if !ring.wait_for_room(frame.len(), PATIENCE) && sys::hung_up(self.requests) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
        }
        if self.piped {
            self.pipe.write_all(&frame::empty(Up::ToRing))?;
            self.piped = false;
        }
        ring.push(frame);
        if ring.take_sleeping(false) {
            self.pipe.write_all(&frame::empty(Up::Bell))?;
        }
        Ok(())
    }

    fn batch_done(&mut self) -> io::Result<()> {
        match &self.ring {
            // On the pipe, the outcomes woke the pool themselves.
            Some(ring) if !self.piped && ring.take_sleeping(true) => {
                self.pipe.write_all(&frame::empty(Up::Bell))
            }
            _ => Ok(()),
        }
    }
}

/// The pool's end: reads outcomes, in order, from wherever the worker sends them.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// Our end of the result pipe (non-blocking).
    pipe: OwnedFd,
    reader: FrameReader<Up>,
    /// The ring; `None` where shared memory could not be had, and every outcome comes on the
    /// pipe.
    ring: Option<RingReader>,
    /// Whether the worker's outcomes come on its pipe now, rather than in its ring.
    piped: bool,
}

impl Receiver {
    pub(crate) fn new(pipe: OwnedFd, ring: Option<RingReader>) -> Receiver {
        Receiver {
            pipe,
            reader: FrameReader::default(),
            ring,
            piped: true,
        }
    }

    /// The result pipe, to `poll`.
    pub(crate) fn pipe(&self) -> BorrowedFd<'_> {
        self.pipe.as_fd()
    }

    /// Looks for outcomes the worker published in its ring since the last look;
    /// [`next`](Receiver::next) reads no further.
    pub(crate) fn refresh(&mut self) {
        if let Some(ring) = &mut self.ring {
            ring.refresh();
        }
    }

    /// Reads what the pipe holds, then looks at the ring again: what the worker published
    /// before it wrote what was just read (see the module documentation).
    ///
    /// Fails when the pipe, read dry, holds part of a frame while outcomes wait in the ring and
    /// the pipe still has the turn: a worker writes its switch to the ring (whole) before it
    /// publishes in the ring, so those bytes are none of ours, and their frame would never end.
    /// (A worker without a ring can leave such bytes unnoticed: its task then runs until its
    /// timeout or the pool's deadline.)
    pub(crate) fn fill(&mut self) -> Result<Fill, String> {
        let ring_ahead = self.piped && self.ring.as_ref().is_some_and(RingReader::unread);
        let filled = self.reader.fill(self.pipe.as_fd());
        self.refresh();
        let filled = filled.map_err(|err| err.to_string())?;
        let dry = matches!(filled, Fill::Drained | Fill::WouldBlock);
        if dry && ring_ahead && matches!(self.reader.frame(), Ok(None)) {
            if let Some(partial) = self.partial() {
                return Err(format!(
                    "{partial} on the pipe, while outcomes wait in the ring"
                ));
            }
        }
        Ok(filled)
    }

    /// Checks, once every outcome that has come is read, that what is left on the pipe can be
    /// the start of a frame. While the ring has the turn, nothing may be: a worker publishes its
    /// switch to the pipe in the ring before it writes there, and that switch has been read by
    /// now; bells are written whole.
    pub(crate) fn verify(&self) -> Result<(), String> {
        match self.partial() {
            Some(partial) if !self.piped && matches!(self.reader.frame(), Ok(None)) => Err(
                format!("{partial} on the pipe, while the ring has the turn"),
            ),
            _ => Ok(()),
        }
    }

    /// The next outcome from wherever the worker sends it now, without reading the pipe. Bells
    /// are passed over. Fails when the bytes are not frames, or a frame comes where the
    /// protocol has no place for it.
    pub(crate) fn next(&mut self) -> Result<Option<(Status, Payload)>, String> {
        loop {
            if !self.piped {
                if let Some(ring) = &mut self.ring {
                    match ring.next::<Up>().map_err(|err| err.to_string())? {
                        Some((Up::ToPipe, _)) => self.piped = true,
                        Some((Up::Outcome(status), payload)) => return Ok(Some((status, payload))),
                        Some((tag, _)) => return Err(format!("a {tag:?} frame in the ring")),
                        None => {}
                    }
                }
            }
            let (tag, payload) = match self.reader.frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(None),
                Err(err) => return Err(err.to_string()),
            };
            let outcome = match tag {
                Up::Bell => None,
                Up::ToRing if self.piped && self.ring.is_some() => {
                    self.piped = false;
                    None
                }
                Up::Outcome(status) if self.piped => Some((status, Payload::copy_of(payload))),
                // In ring mode, the ring was read up to what it held after these bytes came
                // (`fill` refreshes it); a worker publishes its switch to the pipe before it
                // writes there, so the switch would have shown.
                tag => return Err(format!("an unexpected {tag:?} frame on the pipe")),
            };
            self.reader.consume();
            if outcome.is_some() {
                return Ok(outcome);
            }
        }
    }

    /// Tells the worker how far its ring has been read, freeing the space.
    pub(crate) fn release(&mut self) {
        if let Some(ring) = &mut self.ring {
            ring.release();
        }
    }

    /// What was wrong with the bytes that arrived, if a frame was left unfinished.
    pub(crate) fn partial(&self) -> Option<String> {
        (!self.reader.is_empty()).then(|| self.reader.incomplete().to_string())
    }

    /// Whether the ring holds outcomes not yet read (never true without a ring).
    pub(crate) fn pending(&mut self) -> bool {
        self.ring.as_mut().is_some_and(RingReader::pending)
    }

    /// Asks for a bell with the outcome `wake` says, before the pool sleeps; whether outcomes
    /// are already waiting, in which case the pool should not sleep.
    pub(crate) fn sleep(&mut self, wake: Wake) -> bool {
        self.ring.as_mut().is_some_and(|ring| ring.sleep(wake))
    }

    /// Stops asking for bells: the pool is awake and reads anyway.
    pub(crate) fn wake(&self) {
        if let Some(ring) = &self.ring {
            ring.wake();
        }
    }

    /// Tells the worker that requests are on its pipe.
    pub(crate) fn post(&self) {
        if let Some(ring) = &self.ring {
            ring.post();
        }
    }

    /// Tells the worker whether it holds the pool's single task in flight (`ring::STRETCH`).
    pub(crate) fn single(&self, single: bool) {
        if let Some(ring) = &self.ring {
            ring.single(single);
        }
    }

    /// Whether the worker's outcomes come on its pipe now, where a spin on the ring cannot see
    /// them (large ones, or all of them until its first in the ring).
    pub(crate) fn on_pipe(&self) -> bool {
        self.piped
    }
}
