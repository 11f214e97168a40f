use lambda_parallel::lambda_parallel;

#[lambda_parallel]
struct Config {
    threads: usize,
}

fn main() {}
