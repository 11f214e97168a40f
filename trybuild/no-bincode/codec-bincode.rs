// Run without the `bincode` feature of `lambda-parallel` (`tests/ui.rs`).
use lambda_parallel::lambda_parallel;

#[lambda_parallel(codec = bincode)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    assert_eq!(double(2), 4);
}
