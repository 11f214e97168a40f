use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn identity<T>(value: T) -> T {
    value
}

fn main() {}
