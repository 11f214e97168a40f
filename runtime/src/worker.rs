//! The trait `#[lambda_parallel]` implements for each worker function.

use crate::Wire;

/// A function that can run in a worker process.
///
/// `#[lambda_parallel]` implements this for a zero-sized type named after the function; there is
/// no reason to implement it by hand. It links the function to its argument tuple and its return
/// type, so that the runtime can move both across a pipe.
pub trait Worker: 'static {
    /// The function's arguments, as a tuple (`()` for none, `(A,)` for one).
    type Args: Wire;
    /// The function's return type.
    type Output: Wire;
    /// The function's path, for error messages (`my_crate::hash_password`).
    const NAME: &'static str;
    /// Calls the function.
    fn call(args: Self::Args) -> Self::Output;
}
