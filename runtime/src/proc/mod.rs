//! The caller's side of a worker process: starting it ([`launch`](launch::launch), the one fork
//! sequence), owning it until it is reaped ([`Child`](child::Child)), the descriptors of every
//! live worker that a fork must not pass on (`held`), the killed children still to be
//! reaped (`orphans`), and which `SIGKILL`s were the OOM killer's (`oom`). Caller side.

pub(crate) mod child;
pub(crate) mod held;
pub(crate) mod launch;
mod oom;
mod orphans;
