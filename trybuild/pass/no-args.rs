use lambda_parallel::{lambda_parallel, Error, JoinHandle};

#[lambda_parallel]
fn answer() -> u64 {
    42
}

fn main() {
    assert_eq!(answer(), 42);
    let _: fn() -> Result<JoinHandle<u64>, Error> = answer::spawn;
}
