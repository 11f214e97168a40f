// A closure that captures a value a pool cannot copy into its workers: caught by `cargo check`.
use lambda_parallel::Pool;

fn lengths(pool: &Pool, suffix: String) {
    let _ = pool.map(move |word: String| word.len() + suffix.len(), [String::from("a")]);
}

fn main() {
    lengths(&Pool::new(1).unwrap(), String::from("!"));
}
