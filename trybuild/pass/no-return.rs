use lambda_parallel::{lambda_parallel, Error, JoinHandle};

#[lambda_parallel]
fn log(line: String) {
    let _ = line;
}

fn main() {
    log(String::new());
    let _: fn(String) -> Result<JoinHandle<()>, Error> = log::spawn;
}
