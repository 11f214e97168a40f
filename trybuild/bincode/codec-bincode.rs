// Run with the `bincode` feature of `lambda-parallel` (`tests/ui.rs`).
use lambda_parallel::{lambda_parallel, Pool};

#[lambda_parallel(codec = bincode)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() -> Result<(), lambda_parallel::Error> {
    assert_eq!(double::spawn(2)?.join()?, 4);
    assert_eq!(Pool::new(0)?.map(double::TASK, [1, 2])?, [2, 4]);
    Ok(())
}
