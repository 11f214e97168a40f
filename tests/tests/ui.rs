//! Compile-fail and compile-pass cases of `#[lambda_parallel]`, in `trybuild/` at the repo root.
//!
//! `codec = bincode` compiles exactly when the runtime's `bincode` feature is on, which this
//! crate's `bincode` feature turns on (and trybuild passes on to the cases): without it, the
//! case in `no-bincode/` must fail and name the feature; with it, the one in `bincode/` passes.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail(concat!(env!("CARGO_MANIFEST_DIR"), "/../trybuild/*.rs"));
    t.pass(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../trybuild/pass/*.rs"
    ));
    if cfg!(feature = "bincode") {
        t.pass(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../trybuild/bincode/*.rs"
        ));
    } else {
        t.compile_fail(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../trybuild/no-bincode/*.rs"
        ));
    }
}
