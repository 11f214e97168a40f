use lambda_parallel::lambda_parallel;

#[lambda_parallel]
unsafe fn read(address: usize) -> u8 {
    address as u8
}

fn main() {}
