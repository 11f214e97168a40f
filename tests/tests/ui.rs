//! Compile-fail and compile-pass cases of `#[lambda_parallel]`, in `trybuild/` at the repo root.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail(concat!(env!("CARGO_MANIFEST_DIR"), "/../trybuild/*.rs"));
    t.pass(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../trybuild/pass/*.rs"
    ));
}
