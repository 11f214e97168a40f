//! Process-parallel Rust for AWS Lambda.
//!
//! (crate docs: work in progress)

mod child;
mod codec;
mod error;
mod frame;
mod spawn;
mod sys;
mod wire;
mod worker;

pub use crate::error::{Error, PanicLocation};
pub use crate::spawn::JoinHandle;
pub use crate::wire::Wire;
pub use crate::worker::Worker;
pub use lambda_parallel_macros::lambda_parallel;

#[doc(hidden)]
pub mod __private {
    //! Used by code that `#[lambda_parallel]` generates. Not public API: may change in any release.

    pub use crate::spawn::spawn;
    pub use crate::{Error, JoinHandle, Wire, Worker};
    pub use ::core::result::Result;

    /// Fails to compile, under the user's type, unless `T` can cross a pipe.
    pub const fn assert_wire<T: Wire>() {}
}
