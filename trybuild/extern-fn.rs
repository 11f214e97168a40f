use lambda_parallel::lambda_parallel;

#[lambda_parallel]
extern "C" fn callback(x: u32) -> u32 {
    x
}

fn main() {}
