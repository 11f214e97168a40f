use lambda_parallel::lambda_parallel;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

#[derive(Serialize, Deserialize)]
struct ThreadBound(PhantomData<*const ()>);

#[lambda_parallel]
fn check(token: ThreadBound) -> bool {
    let _ = token;
    true
}

fn main() {}
