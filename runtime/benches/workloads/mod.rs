//! The workloads, one module a group; each returns its rows of the table.

pub(crate) mod batch;
pub(crate) mod codec;
pub(crate) mod cpu;
pub(crate) mod large;
pub(crate) mod processes;
pub(crate) mod tiny;
