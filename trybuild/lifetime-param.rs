use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn count<'a>(words: Vec<String>) -> usize {
    words.len()
}

fn main() {}
