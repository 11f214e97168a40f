use lambda_parallel::lambda_parallel;

#[lambda_parallel(timout = 5)]
async unsafe fn count<T>(words: &[T], label: impl ToString) -> usize {
    let _ = label;
    words.len()
}

fn main() {}
