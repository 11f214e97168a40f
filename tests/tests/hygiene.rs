//! The expansion uses only absolute paths, so a worker compiles where prelude names are shadowed.

// The shadowing items exist only to be in scope.
#![allow(dead_code, unused_macros)]

use lambda_parallel::lambda_parallel;

struct Result;
struct Option;
struct Box;
struct Vec;
struct String;
struct Ok;
struct Err;
struct Some;
struct None;
struct Clone;
struct Copy;
struct Debug;

macro_rules! concat {
    () => {};
}
macro_rules! module_path {
    () => {};
}

#[lambda_parallel]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[lambda_parallel]
fn pair(text: std::string::String) -> core::result::Result<(u8, u8), std::string::String> {
    core::result::Result::Ok((0, text.len().try_into().map_err(|_| text)?))
}

#[lambda_parallel]
fn nothing() {}

#[lambda_parallel]
fn r#type(r#type: u8, (a, _): (u8, u8), _: u8) -> u8 {
    r#type + a
}

#[test]
fn plain_calls_are_unchanged_under_shadowed_prelude() {
    assert_eq!(add(1, 2), 3);
    assert_eq!(pair("ab".into()), core::result::Result::Ok((0, 2)));
    nothing();
    assert_eq!(r#type(1, (2, 3), 4), 3);
}

#[test]
fn spawn_type_checks_under_shadowed_prelude() {
    let _: fn(u32, u32) -> _ = add::spawn;
    let _: fn(std::string::String) -> _ = pair::spawn;
    let _: fn() -> _ = nothing::spawn;
    let _: fn(u8, (u8, u8), u8) -> _ = r#type::spawn;
    let _ = format!("{:?}", add {});
}
