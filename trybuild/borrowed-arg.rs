use lambda_parallel::lambda_parallel;
use std::borrow::Cow;

#[lambda_parallel]
fn shout(text: Cow<'_, str>) -> String {
    text.to_uppercase()
}

fn main() {}
