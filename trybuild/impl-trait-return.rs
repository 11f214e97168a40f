use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn numbers(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

fn main() {}
