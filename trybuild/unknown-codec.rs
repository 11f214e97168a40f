use lambda_parallel::lambda_parallel;

#[lambda_parallel(codec = json)]
fn double(x: u32) -> u32 {
    x * 2
}

fn main() {}
