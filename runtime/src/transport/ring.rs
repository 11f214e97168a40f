//! A pool worker's outcome ring: shared memory that the worker writes its outcome frames into and
//! the pool reads them from, with no system call per task. `channel.rs` says when frames go here
//! and when to the pipe; this file is the ring itself, both its ends.
//!
//! A worker must hand over each outcome before it starts the next task, so that a crash fails
//! the task that crashed and no other. Over a pipe that costs a `write(2)` per task, which is
//! most of the cost of a tiny task. Memory shared with the pool is just as safe: a frame the
//! worker has published (by moving `tail` past it) stays readable after the worker dies,
//! whatever kills it. The ring lives in a `memfd` (no file system needed, and AWS Lambda has no
//! `/dev/shm`), sealed against resizing, which the worker maps and the pool maps too.
//!
//! An idle worker whose requests have lately come quickly watches `posted`, which the pool moves
//! whenever it writes requests, for up to [`LINGER`] ([`STRETCH`] while it holds the pool's
//! single task in flight) before it sleeps in `read`; the pool, in turn, spins on the rings for
//! as long before it sleeps in `poll` (`pool/slot.rs`). A quick round trip then wakes nobody.
//!
//! When the pool falls behind and the ring is full, the worker waits on a futex in the shared
//! memory (`waiting` and `released`) until the pool has read enough to make room, checking now
//! and then that its pool still exists. The pool never sleeps while a ring holds frames, so a
//! waiting worker is soon released.
//!
//! The ring is the same framing as the pipe (`wire/frame.rs`), at positions that wrap. `head` and
//! `tail` count bytes from the start and never wrap themselves. The pool trusts nothing it
//! reads: a worker's own code can scribble over the mapping, and that is a bad frame, not
//! undefined behaviour in the pool, which reads the frames with atomic loads (`Mapping::read`)
//! and checks every header before it sizes anything by it.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::sys;
use crate::wire::frame::{self, FrameError, Payload, Tag, HEADER_LEN};

/// Bytes of frames the ring holds. A power of two.
pub(crate) const CAPACITY: usize = 256 << 10;

/// The longest either end spins, waiting for the other, before it sleeps: about what a sleep and
/// a wake-up cost together, on a machine that wakes a sleeping CPU quickly.
pub(crate) const LINGER: Duration = Duration::from_micros(20);

/// The longest either end spins while the pool has a single task in flight (a round trip, as a
/// loop of `apply` makes), so that the pool's thread and the worker that holds the task wait
/// only on each other, and the spins take no CPU that another worker needs: as long as a
/// wake-up can take on a virtual machine.
///
/// Waking a process on a CPU that sleeps means waking that virtual CPU, which on a 2-CPU virtual
/// machine took from 30 µs to over 300 µs. A spin of [`LINGER`] misses an answer that comes
/// that late, so its own end sleeps too, and the next answer is late again: the sleeps feed
/// each other. They also bring the two ends onto one CPU, since a pipe's write wakes its reader
/// on the writer's CPU when the kernel finds no idle CPU for it at once; there a spin only keeps
/// the other end from running until it ends, and the kernel does not part two processes that
/// never run at once. After a pause of 300 ms, 10,000 sequential round trips took 8.5 µs each on
/// average with spins of `LINGER` (a tenth of them 25-60 µs), and 3 µs with spins of this.
/// A blocking join of a one-off worker watches its pipe as long (`spawn.rs`), for the same
/// reason.
pub(crate) const STRETCH: Duration = Duration::from_micros(200);

/// A sleep shorter than this still counts as a quick answer, one that a spin of [`LINGER`] would
/// have caught: the sleep's own wake-up is in it, and on a virtual machine a wake-up alone can
/// take longer than `LINGER` (20-40 µs a hop has been seen). Without this slack, one spin that
/// misses (the other end was preempted, say) would make every later wait a sleep, each too slow
/// to count as quick again.
pub(crate) const QUICK: Duration = Duration::from_micros(100);

/// Which outcome a sleeping pool wants its bell with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The next one: the pool times its tasks from their outcomes (a task timeout is set).
    EachOutcome = 1,
    /// The last of a batch, or whichever leaves the ring half full. The pool needs a worker's
    /// news only then, to send it its next batch or to make room; waking it for every outcome
    /// of a batch would only take a CPU from the workers (on a machine with as many CPUs as
    /// workers, a wake-up per outcome of a 100 µs task cost a fifth of a `map`'s speed).
    BatchEnd = 2,
}

/// Whether spinning ([`LINGER`]) can pay here: not on a single CPU, where the spinner only keeps
/// the process it waits for from running. Worked out once per process, without a lock (a lock
/// held by another thread at a fork would stay held in the child), and inherited by forks: the
/// pool and the fork server ask before they fork workers.
pub(crate) fn may_spin() -> bool {
    static MAY: AtomicU8 = AtomicU8::new(0);
    match MAY.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let may = std::thread::available_parallelism().is_ok_and(|cpus| cpus.get() > 1);
            MAY.store(if may { 2 } else { 1 }, Ordering::Relaxed);
            may
        }
    }
}

/// The control block, one page before the frames.
const CONTROL_LEN: usize = 4096;

/// The whole mapping.
const MAP_LEN: NonZeroUsize = match NonZeroUsize::new(CONTROL_LEN + CAPACITY) {
    Some(len) => len,
    None => unreachable!(),
};

/// Keeps each counter on a cache line of its own, so the writer's `tail` and the reader's
/// `head` do not bounce one line between two cores.
#[repr(C, align(64))]
struct Line<T>(T);

/// The start of the shared mapping. All zero is the empty ring, which is how `memfd` starts.
#[repr(C)]
struct Control {
    /// Bytes the worker has published.
    tail: Line<AtomicU64>,
    /// Bytes the pool has consumed.
    head: Line<AtomicU64>,
    /// Nonzero while the pool sleeps (or is about to) and wants a bell: a [`Wake`], which
    /// says for which frame.
    sleeping: Line<AtomicU32>,
    /// 1 while the worker waits for room (or is about to) and wants `released` to move.
    waiting: Line<AtomicU32>,
    /// Moved by the pool, once room is made, for a waiting worker: the word it sleeps on.
    released: Line<AtomicU32>,
    /// Moved by the pool each time it writes requests to the worker's pipe, so that an idle
    /// worker can watch for them in memory for a moment before it sleeps in `read`.
    posted: Line<AtomicU32>,
    /// 1 while the worker holds the pool's single task in flight, as the pool last looked:
    /// then the worker spins for [`STRETCH`] rather than [`LINGER`].
    single: Line<AtomicU32>,
}

const _: () = assert!(std::mem::size_of::<Control>() <= CONTROL_LEN);
const _: () = assert!(CAPACITY.is_power_of_two());

/// One process's mapping of a ring.
#[derive(Debug)]
struct Mapping(NonNull<u8>);

// SAFETY: the mapping is plain memory owned by this value; the only state shared with other
// processes is accessed through atomics (`Control`) or in byte ranges that the protocol hands
// from one side to the other with release and acquire orderings.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(fd: &OwnedFd, inherit: bool) -> io::Result<Mapping> {
        sys::map_shared(fd.as_fd(), MAP_LEN, inherit).map(Mapping)
    }

    fn control(&self) -> &Control {
        // SAFETY: the mapping starts with `CONTROL_LEN` bytes, page-aligned, large enough for a
        // `Control` (asserted above); all its fields are atomics, for which any bytes are valid.
        unsafe { self.0.cast::<Control>().as_ref() }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the frames follow the control block within the mapping.
        unsafe { self.0.as_ptr().add(CONTROL_LEN) }
    }

    /// Copies `out.len()` bytes from ring position `at` (wrapping) into `out`.
    ///
    /// The bytes are read with relaxed atomic loads, word by word, never with plain reads: the
    /// worker is another process, and its own code may write to the ring at any moment, against
    /// the protocol. Such a write races with this copy and makes the bytes garbage, which the
    /// frame checks then reject; with atomics it cannot make the copy undefined behaviour.
    fn read(&self, at: u64, out: &mut [u8]) {
        let start = position(at);
        let first = out.len().min(CAPACITY - start);
        let (head, tail) = out.split_at_mut(first);
        // SAFETY: both ranges lie within the ring: `start + first <= CAPACITY`, and the rest,
        // at most `CAPACITY` bytes, from its start.
        unsafe {
            copy_from_shared(self.data().add(start), head);
            copy_from_shared(self.data(), tail);
        }
    }

    /// Copies `bytes` to ring position `at` (wrapping). `bytes` is at most `CAPACITY` long.
    fn write(&self, at: u64, bytes: &[u8]) {
        let start = position(at);
        let first = bytes.len().min(CAPACITY - start);
        // SAFETY: as in `read`, with the roles swapped: the reader does not look at these bytes
        // until `tail` moves past them, after this copy (release ordering).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data().add(start), first);
            let rest = bytes.len() - first;
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.data(), rest);
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping came from `map_shared` with this length, and every reference to
        // it borrows `self`.
        unsafe { sys::unmap(self.0, MAP_LEN) };
    }
}

/// Copies `out.len()` bytes from `src`, memory that another process may write at any moment,
/// with relaxed atomic loads: single bytes up to an 8-byte boundary of `src`, then whole words.
///
/// # Safety
///
/// `src` is valid for reads of `out.len()` bytes, for the length of the call, and is only ever
/// accessed atomically or by other processes.
#[allow(
    clippy::cast_ptr_alignment,
    reason = "the words are read from addresses that `lead` aligned to 8 bytes"
)]
unsafe fn copy_from_shared(src: *const u8, out: &mut [u8]) {
    let lead = src.align_offset(8).min(out.len());
    let (bytes, rest) = out.split_at_mut(lead);
    for (i, byte) in bytes.iter_mut().enumerate() {
        // SAFETY: within `src`'s range (the caller's contract); any byte is aligned.
        *byte = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Ordering::Relaxed);
    }
    let mut words = rest.chunks_exact_mut(8);
    let mut at = lead;
    for word in &mut words {
        // SAFETY: `src + at` is 8-byte aligned (`lead` made it so) and 8 bytes of it lie within
        // the caller's range.
        let value = unsafe { AtomicU64::from_ptr(src.add(at).cast::<u64>().cast_mut()) }
            .load(Ordering::Relaxed);
        word.copy_from_slice(&value.to_ne_bytes());
        at += 8;
    }
    for byte in words.into_remainder() {
        // SAFETY: as for the leading bytes.
        *byte = unsafe { AtomicU8::from_ptr(src.add(at).cast_mut()) }.load(Ordering::Relaxed);
        at += 1;
    }
}

#[allow(
    clippy::cast_possible_truncation,
    reason = "the position within the ring is the low bits, which is the point"
)]
fn position(at: u64) -> usize {
    (at as usize) & (CAPACITY - 1)
}

/// The most bytes the reader copies out of the ring at once: a run of small frames costs one
/// copy, not two per frame, and a large frame's payload is copied once, straight into its own
/// buffer.
const BULK: usize = 16 << 10;

/// The pool's side of a worker's ring.
#[derive(Debug)]
pub(crate) struct RingReader {
    map: Mapping,
    /// Copied out of the ring, and published to the worker by [`RingReader::release`].
    head: u64,
    /// What `release` last published.
    released: u64,
    /// Published by the worker, as last read.
    tail: u64,
    /// Bytes copied out of the ring, from `at` on not yet read as frames.
    copied: Vec<u8>,
    at: usize,
}

impl RingReader {
    /// A new ring, and the descriptor that the worker maps it from (the worker's business: the
    /// reader's mapping is not inherited by processes forked later).
    pub(crate) fn create() -> io::Result<(RingReader, OwnedFd)> {
        let fd = sys::shared_memory(MAP_LEN.get())?;
        let map = Mapping::new(&fd, false)?;
        Ok((
            RingReader {
                map,
                head: 0,
                released: 0,
                tail: 0,
                copied: Vec::with_capacity(BULK),
                at: 0,
            },
            fd,
        ))
    }

    /// Looks for frames the worker published since the last look. [`next`](RingReader::next)
    /// reads only up to there, so that a reader draining one busy worker still gets round to
    /// the others before their rings fill.
    pub(crate) fn refresh(&mut self) {
        self.tail = self.map.control().tail.0.load(Ordering::Acquire);
    }

    /// Whether frames not yet read were published as of the last
    /// [`refresh`](RingReader::refresh).
    pub(crate) fn unread(&self) -> bool {
        self.tail != self.head || self.at < self.copied.len()
    }

    /// Whether the worker has published frames not yet read, without asking for a bell.
    pub(crate) fn pending(&mut self) -> bool {
        self.refresh();
        self.unread()
    }

    /// The next frame, up to what the last [`refresh`](RingReader::refresh) saw, copied out.
    pub(crate) fn next<T: Tag>(&mut self) -> Result<Option<(T, Payload)>, FrameError> {
        if self.copied.len() - self.at < HEADER_LEN {
            self.copy_more()?;
            let have = self.copied.len() - self.at;
            if have == 0 {
                return Ok(None);
            }
            if have < HEADER_LEN {
                return Err(FrameError::Truncated {
                    have,
                    want: HEADER_LEN as u64,
                });
            }
        }
        let start = self.at + HEADER_LEN;
        let (tag, len) = frame::parse_header::<T>(&self.copied[self.at..start])?;
        let buffered = self.copied.len() - start;
        let in_ring = self.in_ring()?;
        let Some(len) = usize::try_from(len)
            .ok()
            .filter(|len| *len <= buffered + in_ring)
        else {
            return Err(FrameError::Truncated {
                have: HEADER_LEN + buffered + in_ring,
                want: HEADER_LEN as u64 + len,
            });
        };
        if len <= buffered {
            self.at = start + len;
            return Ok(Some((tag, Payload::copy_of(&self.copied[start..self.at]))));
        }
        // A frame longer than what was copied: the rest of it comes straight from the ring.
        let rest = len - buffered;
        let payload = Payload::filled(len, |out| {
            let (first, second) = out.split_at_mut(buffered);
            first.copy_from_slice(&self.copied[start..]);
            self.map.read(self.head, second);
        });
        self.head += rest as u64;
        self.copied.clear();
        self.at = 0;
        Ok(Some((tag, payload)))
    }

    /// Bytes published and not yet copied out; more than the ring holds is the worker's damage.
    fn in_ring(&self) -> Result<usize, FrameError> {
        let available = self.tail.wrapping_sub(self.head);
        usize::try_from(available)
            .ok()
            .filter(|available| *available <= CAPACITY)
            .ok_or(FrameError::Overfull(available))
    }

    /// Copies up to [`BULK`] more published bytes out of the ring, after the part of a header
    /// that is left; the space they took is the worker's again at the next
    /// [`release`](RingReader::release).
    fn copy_more(&mut self) -> Result<(), FrameError> {
        let take = self.in_ring()?.min(BULK);
        self.copied.drain(..self.at);
        self.at = 0;
        let from = self.copied.len();
        self.copied.resize(from + take, 0);
        self.map.read(self.head, &mut self.copied[from..]);
        self.head += take as u64;
        Ok(())
    }

    /// Tells the worker how far frames have been consumed, freeing their space, and wakes it if
    /// it waits for room.
    pub(crate) fn release(&mut self) {
        if self.head == self.released {
            // Nothing read since: no room made, nobody to wake.
            return;
        }
        self.released = self.head;
        let control = self.map.control();
        control.head.0.store(self.head, Ordering::Release);
        // Pairs with the fence in `RingWriter::wait_for_room`: either the worker sees the room
        // made, or this sees it waiting.
        fence(Ordering::SeqCst);
        if control.waiting.0.load(Ordering::Relaxed) == 1
            && control.waiting.0.swap(0, Ordering::Relaxed) == 1
        {
            control.released.0.fetch_add(1, Ordering::Release);
            sys::futex_wake(&control.released.0);
        }
    }

    /// Asks for a bell with the frame `wake` says, before the pool sleeps. Returns whether
    /// frames are already waiting, in which case the pool should not sleep.
    pub(crate) fn sleep(&mut self, wake: Wake) -> bool {
        let control = self.map.control();
        control.sleeping.0.store(wake as u32, Ordering::Relaxed);
        // Pairs with the fence in `RingWriter::take_sleeping`: either the worker sees the flag
        // raised, or this sees its frame.
        fence(Ordering::SeqCst);
        self.pending()
    }

    /// Tells the worker that requests are on its pipe.
    pub(crate) fn post(&self) {
        self.map.control().posted.0.fetch_add(1, Ordering::Release);
    }

    /// Stops asking for bells: the pool is awake and reads anyway.
    pub(crate) fn wake(&self) {
        self.map.control().sleeping.0.store(0, Ordering::Relaxed);
    }

    /// Tells the worker whether it holds the pool's single task in flight (see [`STRETCH`]).
    pub(crate) fn single(&self, single: bool) {
        let word = u32::from(single);
        let control = self.map.control();
        // Written only when it changes: the worker reads the line at each request.
        if control.single.0.load(Ordering::Relaxed) != word {
            control.single.0.store(word, Ordering::Relaxed);
        }
    }
}

/// The worker's side of its ring.
#[derive(Debug)]
pub(crate) struct RingWriter {
    map: Mapping,
    tail: u64,
    /// Consumed by the pool, as last read.
    head: u64,
}

impl RingWriter {
    /// Maps the ring that [`RingReader::create`] made.
    pub(crate) fn map(fd: &OwnedFd) -> io::Result<RingWriter> {
        let map = Mapping::new(fd, true)?;
        let control = map.control();
        let (tail, head) = (
            control.tail.0.load(Ordering::Relaxed),
            control.head.0.load(Ordering::Acquire),
        );
        Ok(RingWriter { map, tail, head })
    }

    /// Whether a frame of `len` bytes fits, leaving room for a frame with no payload after it (the
    /// switch to the pipe, `channel::Up::ToPipe`).
    pub(crate) fn fits(&mut self, len: usize) -> bool {
        let need = (len + HEADER_LEN) as u64;
        // Wrapping and saturating: should the worker's own code scribble over `head`, frames go
        // to the pipe, and the pool finds the damage when it reads the ring.
        let free =
            |ring: &Self| (CAPACITY as u64).saturating_sub(ring.tail.wrapping_sub(ring.head));
        if free(self) < need {
            self.head = self.map.control().head.0.load(Ordering::Acquire);
        }
        free(self) >= need
    }

    /// Whether a frame of `len` bytes can ever fit, once the pool has read everything before it.
    pub(crate) fn could_fit(len: usize) -> bool {
        len + 2 * HEADER_LEN <= CAPACITY
    }

    /// Waits, for at most `timeout`, for the pool to make room for a frame of `len` bytes;
    /// whether there is room. It may return early without room: the caller looks again.
    pub(crate) fn wait_for_room(&mut self, len: usize, timeout: Duration) -> bool {
        let seen = self.map.control().released.0.load(Ordering::Acquire);
        self.map.control().waiting.0.store(1, Ordering::Relaxed);
        // Pairs with the fence in `RingReader::release`.
        fence(Ordering::SeqCst);
        if self.fits(len) {
            self.map.control().waiting.0.store(0, Ordering::Relaxed);
            return true;
        }
        sys::futex_wait(&self.map.control().released.0, seen, timeout);
        self.fits(len)
    }

    /// Publishes a frame. The caller checked that it [`fits`](RingWriter::fits), or it is a
    /// header alone, for which `fits` always leaves room.
    pub(crate) fn push(&mut self, frame: &[u8]) {
        self.map.write(self.tail, frame);
        self.tail += frame.len() as u64;
        self.map
            .control()
            .tail
            .0
            .store(self.tail, Ordering::Release);
    }

    /// How many times the pool has posted requests; see [`posted_since`](RingWriter::posted_since).
    pub(crate) fn posted(&self) -> u32 {
        self.map.control().posted.0.load(Ordering::Acquire)
    }

    /// Spins until the pool posts requests after `seen` (what [`posted`](RingWriter::posted)
    /// said), for at most [`LINGER`], or [`STRETCH`] while the pool says this worker holds its
    /// single task in flight (it says so no longer once it has handed out another task, and
    /// the spin then ends at `LINGER`, since a CPU may be needed); whether the pool posted.
    pub(crate) fn posted_since(&self, seen: u32) -> bool {
        let control = self.map.control();
        let start = Instant::now();
        loop {
            if self.posted() != seen {
                return true;
            }
            let spun = start.elapsed();
            if spun >= STRETCH || (spun >= LINGER && control.single.0.load(Ordering::Relaxed) == 0)
            {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Whether the pool asked for a bell (and so sleeps, or is about to) with the frame just
    /// published, the last of its batch if `batch_end`; the request is taken, so that one bell
    /// answers it.
    pub(crate) fn take_sleeping(&self, batch_end: bool) -> bool {
        let control = self.map.control();
        // Pairs with the fence in `RingReader::sleep`.
        fence(Ordering::SeqCst);
        let wanted = match control.sleeping.0.load(Ordering::Relaxed) {
            0 => return false,
            2 => {
                batch_end
                    || self.tail - control.head.0.load(Ordering::Acquire) >= CAPACITY as u64 / 2
            }
            _ => true,
        };
        wanted && control.sleeping.0.swap(0, Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests;
