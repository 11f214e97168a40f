//! A set of one-off workers awaited together, in the order they finish (the `tokio` feature):
//! [`JoinSet`], modelled on `tokio::task::JoinSet`. Caller's side.
//!
//! Each member is a [`JoinFuture`], which waits on tokio's reactor. The set gives each member a
//! waker of its own, which queues the member for polling and wakes the task that awaits the set,
//! so that a wake-up polls only the members that have news, not all of them.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future, IntoFuture};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::error::Error;
use crate::func::{ByName, TaskFn, Wire};
use crate::spawn::{self, JoinHandle};
use crate::tokio::JoinFuture;

/// A set of one-off workers, awaited in the order they finish (available with the `tokio`
/// feature), as `tokio::task::JoinSet` is for tasks.
///
/// [`spawn`](JoinSet::spawn) starts a worker in the set (or [`insert`](JoinSet::insert) adds
/// one that `my_fn::spawn(..)` started), and [`join_next`](JoinSet::join_next) awaits the next
/// to finish, on tokio's reactor, with no thread blocked. Each outcome is what
/// [`JoinHandle::join`] would return: a worker that panicked, crashed or was killed is its
/// `Err`, and the others go on.
///
/// ```
/// use lambda_parallel::{lambda_parallel, JoinSet};
///
/// #[lambda_parallel]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # runtime.block_on(async {
/// let mut set = JoinSet::new();
/// for x in 1..=3 {
///     set.spawn(square, (x,))?;
/// }
/// let mut total = 0;
/// while let Some(outcome) = set.join_next().await {
///     total += outcome?;
/// }
/// assert_eq!(total, 1 + 4 + 9);
/// # Ok::<(), lambda_parallel::Error>(())
/// # })?;
/// # Ok(())
/// # }
/// ```
///
/// # Drop
///
/// Dropping the set kills every worker still in it (`SIGKILL`), as dropping a [`JoinHandle`]
/// does; none outlives the set. On a thread of a tokio runtime the drop does not wait for them
/// to end: the killed processes are reaped by a task on the runtime's blocking threads (within
/// milliseconds), or else by the next spawn. [`shutdown`](JoinSet::shutdown) kills them and
/// awaits their reaping on the reactor instead.
///
/// # Panics
///
/// Awaiting a member panics outside a tokio runtime with IO enabled, as [`JoinFuture`] does.
pub struct JoinSet<T> {
    /// The members by slot; a `None` slot is free for the next member.
    members: Vec<Option<Member<T>>>,
    free: Vec<usize>,
    len: usize,
    /// The id the next member gets.
    next_id: usize,
    woken: Arc<Woken>,
}

struct Member<T> {
    id: usize,
    future: JoinFuture<T>,
    waker: Arc<MemberWaker>,
}

/// The slots of the members woken since the set last polled them, and the waker of the task
/// that awaits the set.
#[derive(Default)]
struct Woken {
    inner: Mutex<WokenInner>,
}

#[derive(Default)]
struct WokenInner {
    slots: VecDeque<usize>,
    awaiting: Option<Waker>,
}

impl Woken {
    fn lock(&self) -> std::sync::MutexGuard<'_, WokenInner> {
        // Nothing panics while the lock is held: the queue is consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One member's waker: queues its slot, once until the set polls it, and wakes the awaiting
/// task. A waker left over from a member gone from its slot can only cause a spurious poll of
/// the slot's next member, which is harmless.
struct MemberWaker {
    slot: usize,
    queued: AtomicBool,
    woken: Arc<Woken>,
}

impl Wake for MemberWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let awaiting = {
            let mut woken = self.woken.lock();
            woken.slots.push_back(self.slot);
            woken.awaiting.take()
        };
        if let Some(awaiting) = awaiting {
            awaiting.wake();
        }
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet {
            members: Vec::new(),
            free: Vec::new(),
            len: 0,
            next_id: 0,
            woken: Arc::default(),
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<T: Wire> JoinSet<T> {
    /// An empty set.
    ///
    /// ```
    /// let set = lambda_parallel::JoinSet::<u64>::new();
    /// assert!(set.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        JoinSet::default()
    }

    /// Runs `f` with `args` (a tuple of its arguments) in a worker process of its own, as
    /// `f::spawn(..)` does, and adds the worker to the set. Returns the member's id: the
    /// number of members added to the set before it, which
    /// [`join_next_with_id`](JoinSet::join_next_with_id) gives back with its outcome.
    ///
    /// ```
    /// use lambda_parallel::{lambda_parallel, JoinSet};
    ///
    /// #[lambda_parallel]
    /// fn add(a: u64, b: u64) -> u64 {
    ///     a + b
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let mut set = JoinSet::new();
    /// assert_eq!(set.spawn(add, (2, 3))?, 0);
    /// assert_eq!(set.spawn(add::TASK, (4, 5))?, 1); // in `add`'s own codec
    /// let mut sums = runtime.block_on(async {
    ///     let mut sums = Vec::new();
    ///     while let Some(sum) = set.join_next().await {
    ///         sums.push(sum?);
    ///     }
    ///     Ok::<_, lambda_parallel::Error>(sums)
    /// })?;
    /// sums.sort_unstable();
    /// assert_eq!(sums, [5, 9]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As `f::spawn`: [`Error::is_spawn`] when the pipe or the process cannot be created. The
    /// set is then unchanged.
    pub fn spawn<F, Args>(&mut self, f: F, args: Args) -> Result<usize, Error>
    where
        F: TaskFn<Args, T>,
        Args: Wire,
    {
        let () = ByName::<F>::OK;
        Ok(self.insert(spawn::spawn(f, args)?))
    }

    /// Adds a worker that `my_fn::spawn(..)` started to the set, which owns it from now on;
    /// returns its id, as [`spawn`](JoinSet::spawn) does.
    ///
    /// ```
    /// use lambda_parallel::{lambda_parallel, JoinSet};
    ///
    /// #[lambda_parallel]
    /// fn double(x: u64) -> u64 {
    ///     2 * x
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let mut set = JoinSet::new();
    /// let id = set.insert(double::spawn(21)?);
    /// let next = runtime.block_on(set.join_next_with_id());
    /// assert_eq!(next.map(|(id, outcome)| (id, outcome.ok())), Some((id, Some(42))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert(&mut self, handle: JoinHandle<T>) -> usize {
        let slot = self.free.pop().unwrap_or(self.members.len());
        let waker = Arc::new(MemberWaker {
            slot,
            // Queued below: a new member is polled once, to register with the reactor.
            queued: AtomicBool::new(true),
            woken: Arc::clone(&self.woken),
        });
        let id = self.next_id;
        self.next_id += 1;
        let member = Member {
            id,
            future: handle.into_future(),
            waker,
        };
        if slot == self.members.len() {
            self.members.push(Some(member));
        } else {
            self.members[slot] = Some(member);
        }
        self.len += 1;
        let awaiting = {
            let mut woken = self.woken.lock();
            woken.slots.push_back(slot);
            woken.awaiting.take()
        };
        if let Some(awaiting) = awaiting {
            awaiting.wake();
        }
        id
    }

    /// Awaits the next member to finish and returns its outcome, or `None` when the set is
    /// empty. Members finish in any order; each is taken out of the set, its worker reaped (or,
    /// for a worker of the fork server, left to the server to reap, as [`JoinHandle::join`]
    /// does).
    ///
    /// ```
    /// use lambda_parallel::{lambda_parallel, JoinSet};
    ///
    /// #[lambda_parallel]
    /// fn halve(x: u64) -> u64 {
    ///     assert!(x % 2 == 0, "odd input {x}");
    ///     x / 2
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let mut set = JoinSet::new();
    /// set.spawn(halve, (4,))?;
    /// set.spawn(halve, (5,))?;
    /// let (mut halves, mut panics) = (0, 0);
    /// runtime.block_on(async {
    ///     while let Some(outcome) = set.join_next().await {
    ///         match outcome {
    ///             Ok(_) => halves += 1,
    ///             Err(err) if err.is_panic() => panics += 1,
    ///             Err(err) => panic!("unexpected {err}"),
    ///         }
    ///     }
    /// });
    /// assert_eq!((halves, panics), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes loses no outcome, and the members
    /// stay in the set.
    pub async fn join_next(&mut self) -> Option<Result<T, Error>> {
        self.join_next_with_id().await.map(|(_, outcome)| outcome)
    }

    /// Like [`join_next`](JoinSet::join_next), with the member's id, as
    /// [`spawn`](JoinSet::spawn) and [`insert`](JoinSet::insert) returned it.
    ///
    /// ```
    /// use lambda_parallel::{lambda_parallel, JoinSet};
    ///
    /// #[lambda_parallel]
    /// fn len(text: String) -> usize {
    ///     text.len()
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let texts = ["a", "bcd"];
    /// let mut set = JoinSet::new();
    /// for text in texts {
    ///     set.spawn(len, (text.to_owned(),))?;
    /// }
    /// runtime.block_on(async {
    ///     while let Some((id, outcome)) = set.join_next_with_id().await {
    ///         assert_eq!(outcome?, texts[id].len());
    ///     }
    ///     Ok::<(), lambda_parallel::Error>(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`join_next`](JoinSet::join_next).
    pub async fn join_next_with_id(&mut self) -> Option<(usize, Result<T, Error>)> {
        poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// Polls for the next member to finish, for a hand-written future: `Ready(None)` when the
    /// set is empty, `Pending` (with `cx`'s waker woken when a member has news) while none has
    /// finished.
    ///
    /// ```
    /// use std::future::poll_fn;
    ///
    /// use lambda_parallel::{lambda_parallel, JoinSet};
    ///
    /// #[lambda_parallel]
    /// fn one() -> u8 {
    ///     1
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let mut set = JoinSet::new();
    /// set.spawn(one, ())?;
    /// let next = runtime.block_on(poll_fn(|cx| set.poll_join_next_with_id(cx)));
    /// assert_eq!(next.map(|(id, outcome)| (id, outcome.ok())), Some((0, Some(1))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Result<T, Error>)>> {
        if self.len == 0 {
            return Poll::Ready(None);
        }
        let mut woken = {
            let mut woken = self.woken.lock();
            // Set before the queue is taken: a member woken from now on wakes this task.
            match &woken.awaiting {
                Some(awaiting) if awaiting.will_wake(cx.waker()) => {}
                _ => woken.awaiting = Some(cx.waker().clone()),
            }
            std::mem::take(&mut woken.slots)
        };
        while let Some(slot) = woken.pop_front() {
            let Some(member) = self.members.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            // Cleared before the poll, so that news during it queues the member again.
            member.waker.queued.store(false, Ordering::Release);
            let waker = Waker::from(Arc::clone(&member.waker));
            let Poll::Ready(outcome) =
                std::pin::Pin::new(&mut member.future).poll(&mut Context::from_waker(&waker))
            else {
                continue;
            };
            let id = member.id;
            self.remove(slot);
            if !woken.is_empty() {
                // Not polled yet: first in line for the next call.
                let mut queue = self.woken.lock();
                for slot in woken.into_iter().rev() {
                    queue.slots.push_front(slot);
                }
            }
            return Poll::Ready(Some((id, outcome)));
        }
        Poll::Pending
    }
}

impl<T> JoinSet<T> {
    /// The number of members: workers spawned or inserted and not yet joined.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let mut set = lambda_parallel::JoinSet::new();
    /// set.spawn(|x: u32| x + 1, (1,))?;
    /// assert_eq!(set.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set has no member.
    ///
    /// ```
    /// assert!(lambda_parallel::JoinSet::<()>::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Kills every member's worker (`SIGKILL`) without waiting, and keeps the members: each
    /// still yields its outcome from [`join_next`](JoinSet::join_next), the signal for those
    /// that were killed, or the value of one that had finished already.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use lambda_parallel::{lambda_parallel, JoinSet};
    ///
    /// #[lambda_parallel]
    /// fn stuck() {
    ///     std::thread::sleep(Duration::from_secs(600));
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let mut set = JoinSet::new();
    /// set.spawn(stuck, ())?;
    /// set.abort_all();
    /// let err = runtime.block_on(set.join_next()).unwrap().unwrap_err();
    /// assert_eq!(err.signal_name(), Some("SIGKILL"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn abort_all(&mut self) {
        for member in self.members.iter_mut().flatten() {
            // Fails only for a worker that belongs to another process (a fork of this one).
            let _ = member.future.handle_mut().child.kill();
        }
    }

    /// Kills every member's worker and awaits their ends on the reactor, discarding their
    /// outcomes: the set is then empty, and every worker reaped (or left to the fork server,
    /// which reaps it).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use lambda_parallel::{lambda_parallel, JoinSet};
    ///
    /// #[lambda_parallel]
    /// fn stuck() {
    ///     std::thread::sleep(Duration::from_secs(600));
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let mut set = JoinSet::new();
    /// set.spawn(stuck, ())?;
    /// runtime.block_on(set.shutdown());
    /// assert!(set.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(&mut self)
    where
        T: Wire,
    {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    fn remove(&mut self, slot: usize) {
        self.members[slot] = None;
        self.free.push(slot);
        self.len -= 1;
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        // All are told first, so that they end together; each member's drop then reaps its
        // worker, or, on an async thread, queues it to be reaped (`proc/orphans.rs`).
        self.abort_all();
    }
}
