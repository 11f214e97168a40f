use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn name() -> &'static str {
    "worker"
}

fn main() {}
