use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn count(words: &[String]) -> usize {
    words.len()
}

fn main() {}
