use lambda_parallel::lambda_parallel;

#[lambda_parallel(crate = lambda_parallel, crate = lambda_parallel)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {}
