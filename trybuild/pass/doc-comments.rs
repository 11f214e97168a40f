#![deny(missing_docs)]
//! A crate whose public worker must be documented, generated items included.

use lambda_parallel::lambda_parallel;

/// Doubles a number.
///
/// Runs in a worker with `double::spawn`.
#[lambda_parallel]
pub fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    let _ = (double(1), double::spawn);
}
