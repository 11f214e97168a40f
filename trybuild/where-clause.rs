use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn count(words: Vec<String>) -> usize
where
    String: Clone,
{
    words.len()
}

fn main() {}
