use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn show(value: impl std::fmt::Display) -> String {
    value.to_string()
}

fn main() {}
