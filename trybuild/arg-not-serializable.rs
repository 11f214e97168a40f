use lambda_parallel::lambda_parallel;

struct Connection;

#[lambda_parallel]
fn query(connection: Connection, sql: String) -> usize {
    let _ = connection;
    sql.len()
}

fn main() {}
