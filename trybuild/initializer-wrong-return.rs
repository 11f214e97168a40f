// An initializer returns `()` or `Result<(), E>`: a value of its own has nowhere to go.
use lambda_parallel::{lambda_parallel, Pool};

#[lambda_parallel]
fn connect(url: String) -> usize {
    url.len()
}

fn main() {
    let _ = Pool::builder().initializer(connect, (String::from("db"),));
}
