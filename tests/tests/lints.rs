//! The expansion compiles clean under the strictest lints a user crate is likely to set.

#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications,
    rust_2018_idioms,
    clippy::pedantic
)]

/// A module with `pub` workers, so `missing_docs` applies to what the attribute generates.
pub mod workers {
    use lambda_parallel::lambda_parallel;

    /// Adds two numbers.
    #[lambda_parallel]
    #[must_use]
    pub fn add(a: u64, b: u64) -> u64 {
        a + b
    }

    /// Splits a pair, through a pattern argument.
    #[lambda_parallel]
    #[must_use]
    pub fn swap((a, b): (u8, u8), _unused: bool) -> (u8, u8) {
        (b, a)
    }

    /// Returns nothing.
    #[lambda_parallel]
    pub(crate) fn unit() {}

    /// Names the default codec.
    #[lambda_parallel(codec = msgpack)]
    #[must_use]
    pub fn named_codec(x: u32) -> u32 {
        x
    }

    /// Chooses bincode, where the feature is on.
    #[cfg_attr(feature = "bincode", lambda_parallel(codec = bincode))]
    #[must_use]
    pub fn compact(x: u32) -> u32 {
        x
    }
}

#[test]
fn strict_lints_accept_the_expansion() {
    assert_eq!(workers::add(1, 2), 3);
    assert_eq!(workers::swap((1, 2), true), (2, 1));
    workers::unit();
    assert_eq!(workers::named_codec(7), 7);
    assert_eq!(workers::compact(7), 7);
    let _: fn(u64, u64) -> _ = workers::add::spawn;
    let _: fn((u8, u8), bool) -> _ = workers::swap::spawn;
    let _: fn() -> _ = workers::unit::spawn;
}
