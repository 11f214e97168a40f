//! What the workloads share: the hand-written baselines, the peers, and the table with its
//! figures.

pub(crate) mod memory;
pub(crate) mod peers;
pub(crate) mod raw;
pub(crate) mod report;
