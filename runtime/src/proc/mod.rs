//! The caller's side of a worker process: starting it ([`launch`](launch::launch), the one fork
//! sequence) and owning it until it is reaped ([`Child`](child::Child)).

pub(crate) mod child;
pub(crate) mod launch;
