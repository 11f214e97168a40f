// A function pointer: a worker cannot follow it, and no trait tells it from a function item, so
// this fails in `cargo build`, not `cargo check`, and the error names this line.
use lambda_parallel::Pool;

fn double(x: u64) -> u64 {
    2 * x
}

fn main() {
    let f: fn(u64) -> u64 = double;
    let _ = Pool::new(1).unwrap().map(f, [1, 2]);
}
