use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn forever(code: i32) -> ! {
    std::process::exit(code)
}

fn main() {}
