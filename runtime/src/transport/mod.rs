//! How bytes move between the caller and a pool worker, both ends of each path in one file:
//! the request pipe's sending end ([`outbox`]), the shared-memory ring ([`ring`]), and the
//! outcome channel that uses the ring and the result pipe together ([`channel`]).

pub(crate) mod channel;
pub(crate) mod outbox;
pub(crate) mod ring;
