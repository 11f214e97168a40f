use lambda_parallel::lambda_parallel;

struct Connection;

#[lambda_parallel]
fn connect(url: String) -> Connection {
    let _ = url;
    Connection
}

fn main() {}
