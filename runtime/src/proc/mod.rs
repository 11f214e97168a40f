//! The caller's side of a worker process: starting it ([`launch`](launch::launch), the one fork
//! sequence), owning it until it is reaped ([`Child`](child::Child)), the descriptors of every
//! live worker that a fork must not pass on (`held`), and the killed children still to be
//! reaped (`orphans`). Caller side.

pub(crate) mod child;
pub(crate) mod held;
pub(crate) mod launch;
mod orphans;
