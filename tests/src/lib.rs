//! Tests of `lambda-parallel` live in `tests/`; this crate has no code of its own.
