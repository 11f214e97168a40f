use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn count(words: &[String]) -> usize {
    words.len()
}

fn main() {
    let words = vec![String::from("a")];
    assert_eq!(count(&words), 1);
}
