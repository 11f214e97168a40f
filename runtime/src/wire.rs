//! The bound every argument and return value of a worker satisfies.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value that can cross the pipe between the caller and a worker process.
///
/// Implemented for every `Serialize + DeserializeOwned + Send + 'static` type; there is nothing to
/// implement by hand. `#[lambda_parallel]` checks it for each argument and the return value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to or from a worker process",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "arguments and the return value of a `#[lambda_parallel]` fn must be \
            `serde::Serialize + serde::de::DeserializeOwned + Send + 'static`"
)]
pub trait Wire: Serialize + DeserializeOwned + Send + 'static {}

// One error naming `Wire`, rather than one per unmet supertrait.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> Wire for T {}
