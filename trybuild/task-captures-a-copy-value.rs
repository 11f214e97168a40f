// A closure that captures a `Copy` value: no trait tells it from one that captures nothing, so
// this fails in `cargo build`, not `cargo check`, and the error names this line.
use lambda_parallel::Pool;

fn scaled(pool: &Pool, factor: u64) {
    let _ = pool.map(move |x: u64| x * factor, [1, 2]);
}

fn main() {
    scaled(&Pool::new(1).unwrap(), 3);
}
